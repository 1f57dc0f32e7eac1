"""The GPU a SLURM job was given, as VirtualGL's EGL device: `vglrun -d /dev/dri/cardN`, or
`vglrun -d eglN` where that GPU has no DRM card node here.

Facts, each read from where the kernel puts it (the roots are parameters, so that tests can
point them at fake trees):
- which GPU: SLURM_STEP_GPUS, else SLURM_JOB_GPUS: SLURM's global GPU ids, the NVIDIA device
  minor numbers (/dev/nvidiaN; gres.conf's File= order, which AutoDetect=nvml also gives),
  the same whatever device cgroup the job has; else CUDA_VISIBLE_DEVICES: a GPU UUID (or a
  unique prefix of one), or an index, taken in PCI bus order (CUDA_DEVICE_ORDER=PCI_BUS_ID;
  an index is relative to the GPUs CUDA sees, which a device cgroup may renumber, hence last);
- the NVIDIA GPUs: /proc/driver/nvidia/gpus/*/information (device minor, UUID, PCI address);
- the DRM cards: /sys/class/drm/cardN/device, a link to the card's PCI device, and their
  nodes in /dev/dri;
- where the GPU has no DRM card node (nvidia-drm not loaded; or a container given /dev/nvidia*
  but not /dev/dri, as `apptainer --nv` gives, which still sees the host's /sys): the EGL
  devices, listed in a process of their own by egldevices.py.

VirtualGL's EGL back end takes a DRI device path and compares it with each EGL device's
EGL_DRM_DEVICE_FILE_EXT, which names the card (primary) node, /dev/dri/cardN, not the render
node. Without that node, `eglN` names the N-th EGL device that initialises, in the order of
eglQueryDevicesEXT, which depends on the vendor libraries installed: the device whose UUID
(EGL_EXT_device_persistent_id) is the GPU's is counted there, as VirtualGL counts. A GPU that
no EGL device can be matched to gets plain `egl`, VirtualGL's first device.

EGL_NV_device_cuda's CUDA device is not matched against the job's GPU: which CUDA ordinal a
GPU has depends on CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER (whose default, FASTEST_FIRST,
ranks GPUs by a heuristic of CUDA's), and whether NVIDIA's EGL driver applies either to the
ordinal it gives is not documented: a match on it would be a guess.

Light on imports: the launcher reads it when it starts inside a SLURM job (facts.py).
"""

from __future__ import annotations

import os

from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

NVIDIA_GPUS = "/proc/driver/nvidia/gpus"
DRM_CLASS = "/sys/class/drm"
# Where udev puts the nodes of /sys/class/drm's devices.
DRI_DIR = "/dev/dri"
# CUDA_VISIBLE_DEVICES values that hide every GPU (SLURM sets NoDevFiles when none was asked).
NO_GPU = ("", "-1", "NoDevFiles", "none")


class Gpu(Record):
    __slots__ = ("bus", "minor", "uuid")

    def __init__(self, minor: int, uuid: str, bus: str) -> None:
        # The /dev/nvidiaN number, the GPU-... UUID, the PCI address (0000:3b:00.0).
        self.minor = minor
        self.uuid = uuid
        self.bus = bus


class DrmCard(Record):
    __slots__ = ("bus", "name", "render_node")

    def __init__(self, name: str, bus: str, render_node: str | None) -> None:
        # cardN, the PCI address of its device, and its renderDN sibling if any.
        self.name = name
        self.bus = bus
        self.render_node = render_node


def pci_address(text: str) -> str:
    """One spelling for a PCI address: nvidia-smi's 00000000:3B:00.0 and the kernel's
    0000:3b:00.0 are the same device."""
    prefix, _, function = text.strip().lower().rpartition(":")
    domain, _, bus = prefix.rpartition(":")
    return f"{int(domain or '0', 16):04x}:{bus}:{function}"


def parse_information(text: str) -> Gpu | None:
    """A GPU from the NVIDIA driver's /proc/driver/nvidia/gpus/<bus>/information."""
    fields = {}
    for line in text.splitlines():
        name, colon, value = line.partition(":")
        if colon:
            fields[name.strip()] = value.strip()
    try:
        return Gpu(
            int(fields["Device Minor"]), fields["GPU UUID"], pci_address(fields["Bus Location"])
        )
    except (KeyError, ValueError):
        return None


def nvidia_gpus(root: str = NVIDIA_GPUS) -> list[Gpu]:
    found = []
    for entry in sorted(_listdir(root)):
        try:
            with open(os.path.join(root, entry, "information"), encoding="utf-8") as info:
                gpu = parse_information(info.read())
        except OSError:
            continue
        if gpu is not None:
            found.append(gpu)
    return found


def drm_cards(root: str = DRM_CLASS) -> list[DrmCard]:
    found = []
    for name in sorted(_listdir(root)):
        # cardN only: cardN-HDMI-A-1 and the like are its connectors.
        if not (name.startswith("card") and name[4:].isdigit()):
            continue
        device = os.path.realpath(os.path.join(root, name, "device"))
        render = sorted(n for n in _listdir(os.path.join(device, "drm")) if n.startswith("renderD"))
        found.append(DrmCard(name, os.path.basename(device), render[0] if render else None))
    return found


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _first_id(text: str) -> str | None:
    """The first id of SLURM's and CUDA's lists ("0,2", "1-3", "GPU-8f2e...,GPU-77aa..."),
    None when there is none. Only the first is used: a range is never expanded, however large
    (a job's variables are not ours to trust)."""
    for item in (part.strip() for part in text.split(",")):
        low, dash, high = item.partition("-")
        if dash and low.isdigit() and high.isdigit():
            return low
        if item:
            return item
    return None


def allocated_gpu(env: Mapping[str, str], gpus: Sequence[Gpu]) -> tuple[Gpu | None, str]:
    """The first GPU the job was given, and where that was read; (None, why) when the
    variables name one that is not here; (None, "") when they name none."""
    for variable in ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS"):
        first = _first_id(env.get(variable, ""))
        if first is not None:
            gpu = next((g for g in gpus if str(g.minor) == first), None)
            where = f"{variable}={env[variable]}"
            return (
                (gpu, where)
                if gpu
                else (None, f"{where}, but no NVIDIA GPU has device minor {first} in {NVIDIA_GPUS}")
            )
    visible = env.get("CUDA_VISIBLE_DEVICES", "").strip()
    if visible in NO_GPU:
        return None, ""
    first = _first_id(visible)
    if first is None:
        return None, ""
    where = f"CUDA_VISIBLE_DEVICES={visible}"
    if first.isdigit():
        by_bus = sorted(gpus, key=lambda g: g.bus)
        # Compared as text first: int() refuses digit strings over 4300 long.
        if len(first) <= len(str(len(by_bus))) and int(first) < len(by_bus):
            return by_bus[int(first)], f"{where}, in PCI bus order"
        return None, f"{where}, but only {len(by_bus)} NVIDIA GPUs are in {NVIDIA_GPUS}"
    matches = [g for g in gpus if g.uuid.startswith(first)]
    if len(matches) == 1:
        return matches[0], where
    return None, f"{where}, which names no single GPU in {NVIDIA_GPUS} (a MIG instance?)"


class EglDevice(Record):
    __slots__ = ("cuda", "drm", "index", "uuid", "vgl_index")

    def __init__(
        self, index: int, vgl_index: int | None, uuid: str | None, cuda: int | None, drm: str | None
    ) -> None:
        # Its place in eglQueryDevicesEXT's list; VirtualGL's number for it (the N of eglN),
        # None when eglInitialize refuses it; its UUID, CUDA device and DRM card node, when it
        # gives them.
        self.index = index
        self.vgl_index = vgl_index
        self.uuid = uuid
        self.cuda = cuda
        self.drm = drm


class EglDevices(Record):
    __slots__ = ("devices", "problem")

    def __init__(self, devices: tuple[EglDevice, ...], problem: str = "") -> None:
        # The devices, and why they could not be listed (empty when they were).
        self.devices = devices
        self.problem = problem


class Allocation(Record):
    __slots__ = ("device", "egl", "reason")

    def __init__(self, device: str, reason: str, egl: EglDevices | None = None) -> None:
        # VirtualGL's device for the job's GPU, why, and the EGL devices listed to find it
        # (None when it was found without them).
        self.device = device
        self.reason = reason
        self.egl = egl


EGL_DEVICES_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "egldevices.py")
# NVIDIA's driver initialises each GPU in turn, which takes a while on a GPU that is not kept
# initialised (no persistence daemon).
EGL_DEVICES_DEADLINE = 20.0


def egl_devices(env: Mapping[str, str], deadline: float = EGL_DEVICES_DEADLINE) -> EglDevices:
    """The EGL devices that VirtualGL would see with `env`, in its order and with its numbers."""
    import json
    import subprocess
    import sys

    try:
        listed = subprocess.run(
            [sys.executable, "-I", EGL_DEVICES_SCRIPT],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=deadline,
        )
    except subprocess.TimeoutExpired:
        return EglDevices((), f"listing them did not end within {deadline:g} s")
    except OSError as error:
        return EglDevices((), f"cannot list them: {error}")
    lines = listed.stdout.decode(errors="replace").splitlines()
    try:
        report = json.loads(lines[-1]) if lines else {}
    except ValueError:
        # Cut short by a crash, or a driver's own output.
        report = {}
    if not isinstance(report, dict):
        report = {}
    if listed.returncode != 0 or "devices" not in report:
        said = listed.stderr.decode(errors="replace").strip().splitlines()
        how = (
            f"killed by signal {-listed.returncode}"
            if listed.returncode < 0
            else f"exit status {listed.returncode}"
        )
        return EglDevices((), report.get("error") or (said[-1] if said else how))
    devices = []
    valid = 0
    for index, found in enumerate(report["devices"]):
        number = None
        if found["initialises"]:
            number = valid
            valid += 1
        devices.append(EglDevice(index, number, found["uuid"], found["cuda"], found["drm"]))
    return EglDevices(tuple(devices))


def egl_device_of(gpu: Gpu, listed: EglDevices) -> tuple[int | None, str]:
    """VirtualGL's number for the EGL device that is `gpu` (by UUID), and how it was found;
    (None, why) when none is."""
    if listed.problem:
        return None, f"the EGL devices could not be listed: {listed.problem}"
    same = next((d for d in listed.devices if d.uuid and d.uuid.lower() == gpu.uuid.lower()), None)
    if same is None:
        if not any(d.uuid for d in listed.devices):
            return None, "no EGL device gives its UUID (EGL_EXT_device_persistent_id)"
        return None, f"no EGL device has its UUID (of {len(listed.devices)} listed)"
    if same.vgl_index is None:
        return None, f"eglInitialize refuses its EGL device (#{same.index} listed)"
    return same.vgl_index, f"the allocated GPU {gpu.uuid} is EGL device {same.vgl_index}"


def egl_device(
    env: Mapping[str, str],
    nvidia_root: str = NVIDIA_GPUS,
    drm_root: str = DRM_CLASS,
    dev: str = "/dev",
) -> Allocation | None:
    """VirtualGL's device for the GPU that the environment (a SLURM job's) names, and why;
    None when it names none. `dev`: where the device nodes are."""
    gpu, where = allocated_gpu(env, nvidia_gpus(nvidia_root))
    if gpu is None:
        return Allocation("egl", f"VirtualGL's first EGL device: {where}") if where else None
    card = next((c for c in drm_cards(drm_root) if c.bus == gpu.bus), None)
    if card is not None and os.path.exists(os.path.join(dev, "dri", card.name)):
        render = f", render node {card.render_node}" if card.render_node else ""
        return Allocation(
            os.path.join(DRI_DIR, card.name),
            f"the allocated GPU {gpu.bus} {gpu.uuid} ({where}{render})",
        )
    no_card = (
        f"has DRM card {card.name}, but no {DRI_DIR}/{card.name} here (a container without "
        f"{DRI_DIR}?)"
        if card
        else "has no DRM card node (is the nvidia-drm module loaded?)"
    )
    fallback = f"VirtualGL's first EGL device: the allocated GPU {gpu.bus} ({where}) {no_card}"
    # Without the GPU's own node no EGL device can be it: the listing would be time lost.
    if not os.path.exists(os.path.join(dev, f"nvidia{gpu.minor}")):
        return Allocation("egl", f"{fallback}, and no /dev/nvidia{gpu.minor}")
    listed = egl_devices(env)
    number, how = egl_device_of(gpu, listed)
    if number is None:
        return Allocation("egl", f"{fallback}; {how}", listed)
    missing = f"{DRI_DIR}/{card.name} is not here" if card else "it has no DRM card"
    return Allocation(f"egl{number}", f"{how} ({where}; {missing})", listed)
