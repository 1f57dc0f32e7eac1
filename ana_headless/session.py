"""The one way a headless display is made, for the launcher, doctor and the in-process API.

A display is five resources, each with one owner and one cleanup: the private directory
(lifetime.PrivateDirectory), the watcher that cleans up if we die (lifetime.Watcher), the
claimed display number (claim.DisplayClaim), the server process (xserver.XServer) and the
cookie files in the directory. `Session` makes them in order and undoes them in the reverse
order. Light on imports: the launcher makes its display before anything else is loaded.
"""

from __future__ import annotations

import os

from .claim import claim_display
from .environment import apply_patch, display_patch
from .lifetime import PrivateDirectory, Watcher
from .messages import log
from .plan import PRIVATE_DIR
from .process import HeldSignals
from .xauth import auth_file, inherited_auth
from .xserver import XServer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import TracebackType

    from .plan import Candidate, Plan


class Session:
    """A private virtual display: its server is starting once this is made (see
    XServer.wait_ready); `close()` stops the server and removes everything of ours."""

    def __init__(self, plan: Plan) -> None:
        self._cleanups: list[Callable[[], None]] = []
        # What candidate_env made in the directory already.
        self._links: set[str] = set()
        try:
            # No signal lands between a resource's making and its registration here: one that
            # came meanwhile is raised as the block ends, and everything made is undone.
            with HeldSignals():
                self.directory = PrivateDirectory(os.environ.get("TMPDIR"))
                self._cleanups.append(self.directory.remove)
                self.watcher = Watcher(self.directory.path)
                # Closed last, after the directory's removal: until everything is gone, our
                # death still has it removed.
                self._cleanups.insert(0, self.watcher.close)
                self.cookie = os.urandom(16)
                server_auth = self.directory.write("server-auth", auth_file(self.cookie))
                self.claim = claim_display() if plan.server.takes_sockets else None
                if self.claim is not None:
                    self.watcher.remove_on_death(self.claim.files)
                    self._cleanups.append(self._release_claim)
                self.server = XServer(
                    plan.server,
                    directory=self.directory,
                    auth_file=server_auth,
                    claim=self.claim,
                    watcher=self.watcher,
                    timeout=plan.timeout,
                )
                # Registered before the server is spawned: whatever fails after its spawn,
                # it is stopped.
                self._cleanups.append(self.server.stop)
                self.server.start()
        except BaseException:
            self.close()
            raise

    def _release_claim(self) -> None:
        if self.claim is not None:
            files = self.claim.files
            self.claim.release()
            # Removed by us: after this, the names may be somebody else's.
            for path, _inode in files:
                self.watcher.forget(path)

    def child_env(self, base_env: Mapping[str, str]) -> dict[str, str]:
        """The environment of a client of this display (SPEC §3), before its GL mode's. A
        server that picks its own number is waited for: the number is needed here."""
        server = self.server
        if not server.connectable:
            server.wait_ready()
        log.info(
            "display %s (%s pid %d)%s",
            server.display,
            server.kind,
            server.pid,
            " ready" if server.ready else ", clients wait until it is ready",
        )
        runtime_dir = None
        if not base_env.get("XDG_RUNTIME_DIR"):
            runtime_dir = self.directory.make_directory("runtime")
        client_auth = self.directory.write(
            "Xauthority", auth_file(self.cookie, str(server.number), inherited_auth(base_env))
        )
        return apply_patch(
            base_env,
            display_patch(
                server.display,
                client_auth,
                runtime_dir,
                base_env,
                server_kind=server.kind,
                server_log=server.log_path,
            ),
        )

    def candidate_env(self, candidate: Candidate, display_env: Mapping[str, str]) -> dict[str, str]:
        """The environment of a client that uses `candidate` for its GL, probe or child: its
        links made in our directory (once), its patch filled in with the directory's path."""
        for name, target in candidate.links:
            if name not in self._links:
                parent = name.rpartition("/")[0]
                if parent and parent not in self._links:
                    self.directory.make_directory(parent)
                    self._links.add(parent)
                self.directory.link(name, target)
                self._links.add(name)
        patch = {
            name: value.replace(PRIVATE_DIR, self.directory.path) if value else value
            for name, value in candidate.env_patch.items()
        }
        return apply_patch(display_env, patch)

    def close(self) -> None:
        """Undo everything made, the last made first and the watcher last; each step runs
        even if one fails."""
        while self._cleanups:
            cleanup = self._cleanups.pop()
            try:
                cleanup()
            except BaseException:
                self.close()
                raise

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
