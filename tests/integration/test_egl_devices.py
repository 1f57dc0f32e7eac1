"""The EGL device of a SLURM job's GPU where that GPU has no DRM card node here (a container
given /dev/nvidia* but not /dev/dri, as `apptainer --nv` gives): this host has no GPU, so the
EGL devices come from a fake libEGL built here with cc (tests/fixtures/fake_libegl.c), whose
devices FAKE_EGL_DEVICES describes and which LD_LIBRARY_PATH puts before the system's, on the
fake /proc, /sys and /dev trees of tests/unit/test_slurmgpu.py."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest

from ana_headless.doctor import SCHEMA_FILE, diagnose, render_text
from ana_headless.facts import gather
from ana_headless.options import Options
from ana_headless.plan import make_plan
from ana_headless.slurmgpu import Allocation, egl_device
from tests.conftest import FIXTURES, VGL_BIN, ana_env
from tests.integration.test_gpu_truth import build
from tests.unit.test_slurmgpu import UUID_A, UUID_B, FakeGpuHost

# A GPU of the host that is not the job's.
UUID_C = "GPU-0c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5"


@pytest.fixture(scope="module")
def fake_libegl(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The directory of the fake libEGL.so.1."""
    source = (FIXTURES / "fake_libegl.c").read_text()
    return str(build(tmp_path_factory.mktemp("fake-libegl"), "libEGL.so.1", source).parent)


def fake_device(
    uuid: str | None = None, cuda: int | None = None, drm: str | None = None, fails: bool = False
) -> str:
    """One device of FAKE_EGL_DEVICES; its UUID given as NVIDIA writes it (the fake takes the
    16 bytes in that order, as EGL_EXT_device_persistent_id gives them)."""
    attributes = [
        f"uuid={uuid.removeprefix('GPU-').replace('-', '')}" if uuid else "",
        f"cuda={cuda}" if cuda is not None else "",
        f"drm={drm}" if drm else "",
        "fails" if fails else "",
    ]
    return ",".join(filter(None, attributes))


CARDS = {UUID_A: "card1", UUID_B: "card2"}


@pytest.fixture
def container(tmp_path: Path) -> FakeGpuHost:
    """Two GPUs whose DRM cards the host's /sys shows, but whose /dev/dri nodes are not here;
    their /dev/nvidiaN are."""
    fake = FakeGpuHost(tmp_path)
    fake.gpu(0, UUID_A, "0000:86:00.0", CARDS[UUID_A], "renderD128", dri_node=False)
    fake.gpu(1, UUID_B, "0000:18:00.0", CARDS[UUID_B], "renderD129", dri_node=False)
    return fake


def job_env(fake_libegl: str, *devices: str, **variables: str) -> dict[str, str]:
    """A SLURM job's environment, with the fake libEGL and its devices (none: unset)."""
    return ana_env(
        SLURM_JOB_ID="7",
        LD_LIBRARY_PATH=fake_libegl,
        FAKE_EGL_DEVICES=";".join(devices) if devices else None,
        VGL_DISPLAY=None,
        **variables,
    )


# A device eglInitialize refuses, first: VirtualGL does not count it, so the job's GPUs are
# egl0 (UUID_A) and egl1 (UUID_B), not egl1 and egl2; then a software device without a UUID.
HOST_DEVICES = (
    fake_device(UUID_C, cuda=2, fails=True),
    fake_device(UUID_A, cuda=1),
    fake_device(UUID_B, cuda=0),
    fake_device(),
)


def allocation(container: FakeGpuHost, env: dict[str, str]) -> Allocation:
    chosen = egl_device(env, *container.roots, str(container.dev))
    assert chosen is not None
    return chosen


@pytest.mark.parametrize(
    ("variables", "device", "uuid"),
    [
        ({"SLURM_JOB_GPUS": "1"}, "egl1", UUID_B),
        ({"SLURM_STEP_GPUS": "0", "SLURM_JOB_GPUS": "0,1"}, "egl0", UUID_A),
        ({"CUDA_VISIBLE_DEVICES": UUID_B}, "egl1", UUID_B),
        ({"CUDA_VISIBLE_DEVICES": UUID_A[:12]}, "egl0", UUID_A),
    ],
)
def test_the_job_gpu_is_the_egl_device_with_its_uuid_counted_among_those_that_initialise(
    container: FakeGpuHost, fake_libegl: str, variables: dict[str, str], device: str, uuid: str
) -> None:
    chosen = allocation(container, job_env(fake_libegl, *HOST_DEVICES, **variables))
    assert chosen.device == device
    assert chosen.reason.startswith(f"the allocated GPU {uuid} is EGL device {device[3:]} (")
    assert chosen.reason.endswith(f"; /dev/dri/{CARDS[uuid]} is not here)")
    assert chosen.egl is not None and chosen.egl.problem == ""
    listed = [(d.index, d.vgl_index, d.uuid, d.cuda) for d in chosen.egl.devices]
    assert listed == [
        (0, None, UUID_C, 2),
        (1, 0, UUID_A, 1),
        (2, 1, UUID_B, 0),
        (3, 2, None, None),
    ]


def test_the_plan_gives_vglrun_that_device(container: FakeGpuHost, fake_libegl: str) -> None:
    env = job_env(fake_libegl, *HOST_DEVICES, SLURM_JOB_GPUS="1")
    facts = gather(env, dev=str(container.dev), gpu_roots=container.roots)
    virtualgl = make_plan(facts.replace(vglrun="vglrun"), Options(gl="virtualgl")).candidates[0]
    assert virtualgl.prefix == ("vglrun", "-d", "egl1")
    assert virtualgl.reason.startswith(f"the allocated GPU {UUID_B} is EGL device 1")


@pytest.mark.parametrize(
    ("devices", "said"),
    [
        # The host's other GPUs only (the job's is hidden from this container's driver).
        ((fake_device(UUID_A), fake_device(UUID_C)), "no EGL device has its UUID (of 2 listed)"),
        # No UUIDs: the CUDA device that would "match" is not taken (slurmgpu.py says why).
        ((fake_device(cuda=0), fake_device(cuda=1)), "no EGL device gives its UUID"),
        ((fake_device(UUID_A), fake_device(UUID_B, fails=True)), "eglInitialize refuses"),
        ((), "the EGL devices could not be listed: no EGL devices"),
    ],
)
def test_no_device_with_the_gpus_uuid_falls_back_to_virtualgls_first_and_says_why(
    container: FakeGpuHost, fake_libegl: str, devices: tuple[str, ...], said: str
) -> None:
    chosen = allocation(container, job_env(fake_libegl, *devices, SLURM_JOB_GPUS="1"))
    assert chosen.device == "egl"
    assert chosen.reason.startswith("VirtualGL's first EGL device: the allocated GPU 0000:18:00.0")
    assert said in chosen.reason


def test_an_egl_library_that_does_not_load_is_said(
    container: FakeGpuHost, fake_libegl: str, tmp_path: Path
) -> None:
    # VirtualGL loads VGL_EGLLIB instead of libEGL.so.1 where it is set: so does the listing.
    missing = tmp_path / "no-such-libEGL.so"
    env = job_env(fake_libegl, *HOST_DEVICES, SLURM_JOB_GPUS="1", VGL_EGLLIB=str(missing))
    chosen = allocation(container, env)
    assert chosen.device == "egl" and chosen.egl is not None
    assert f"could not be listed: {missing}: cannot open shared object file" in chosen.reason


def test_doctor_shows_the_egl_devices_and_the_one_vglrun_is_given(
    container: FakeGpuHost, fake_libegl: str, tmp_path: Path
) -> None:
    env = job_env(fake_libegl, *HOST_DEVICES, SLURM_JOB_GPUS="1")
    report = diagnose(
        env,
        dev=str(container.dev),
        egl_vendor_dirs=(str(tmp_path / "no-egl_vendor.d"),),
        gpu_roots=container.roots,
    )
    with open(SCHEMA_FILE, encoding="utf-8") as schema:
        jsonschema.validate(json.loads(json.dumps(report)), json.load(schema))
    facts = report["facts"]
    assert facts["allocated_gpu"][0] == "egl1"
    assert [d["vgl_index"] for d in facts["gpu_egl_devices"]["devices"]] == [None, 0, 1, 2]
    text = render_text(report)
    assert re.search(rf"=> egl1 +#2 +{UUID_B} +CUDA device 0\n", text), text
    assert re.search(rf"   - +#0 +{UUID_C} +CUDA device 2 +refused by eglInitialize\n", text)
    assert re.search(rf"allocated GPU +egl1 \(the allocated GPU {UUID_B} is EGL device 1", text)


@pytest.mark.vendor
def test_virtualgls_own_eglinfo_numbers_the_devices_as_the_listing_does(
    container: FakeGpuHost, fake_libegl: str
) -> None:
    """VirtualGL's eglinfo -e walks the devices with the code vglrun -d uses; each device is
    named by a distinct DRM path here, so that its lines can be matched with ours."""
    eglinfo = VGL_BIN / "eglinfo"
    if not eglinfo.exists():
        pytest.skip(f"VirtualGL is not built in {VGL_BIN}")
    devices = [
        fake_device(UUID_C, drm="/fake/dri/card3", fails=True),
        fake_device(drm="/fake/dri/card0"),
        fake_device(UUID_A, drm="/fake/dri/card1", fails=True),
        fake_device(UUID_B, drm="/fake/dri/card2"),
    ]
    env = job_env(fake_libegl, *devices, SLURM_JOB_GPUS="1")
    chosen = allocation(container, env)
    assert chosen.device == "egl1" and chosen.egl is not None
    ours = {d.drm: f"egl{d.vgl_index}" for d in chosen.egl.devices if d.vgl_index is not None}
    listing = subprocess.run(
        [str(eglinfo), "-e"], env=env, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    found = re.findall(r"EGL device ID: (egl\d+).*, DRI device path: (\S+)", listing)
    theirs = {path: name for name, path in found}
    assert theirs == ours == {"/fake/dri/card0": "egl0", "/fake/dri/card2": "egl1"}
