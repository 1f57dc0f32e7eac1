"""The GPU a SLURM job was given, as VirtualGL's EGL device, decided from facts: fake
/proc/driver/nvidia, /sys/class/drm and /dev trees (this machine has no GPU), laid out as the
NVIDIA driver, the kernel and udev lay them out; and from EGL device lists as
ana_headless/egldevices.py gives them (tests/integration/test_egl_devices.py lists them from a
fake libEGL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ana_headless.facts import HostFacts
from ana_headless.options import Options
from ana_headless.plan import make_plan
from ana_headless.slurmgpu import (
    Allocation,
    EglDevice,
    EglDevices,
    Gpu,
    egl_device,
    egl_device_of,
    nvidia_gpus,
    parse_information,
    pci_address,
)

INFORMATION = """Model: \t\t NVIDIA H200
IRQ:   \t\t 512
GPU UUID: \t {uuid}
Video BIOS: \t 96.00.99.00.01
Bus Type: \t PCIe
DMA Size: \t 52 bits
DMA Mask: \t 0xfffffffffffff
Bus Location: \t {bus}
Device Minor: \t {minor}
GPU Excluded:\t No
"""
UUID_A = "GPU-4b6f3a2e-0d2c-7a1b-9c55-1f0e8d3b2a10"
UUID_B = "GPU-9e81c7d4-55aa-4e21-b0c3-77d2f6a9e0b4"


class FakeGpuHost:
    """Fake /proc/driver/nvidia/gpus, /sys and /dev trees under tmp_path: a BMC's VGA card
    first (card0), then NVIDIA GPUs with their DRM card and render nodes, or none. The "device
    nodes" of the fake /dev are plain files (never real devices)."""

    def __init__(self, root: Path) -> None:
        self.nvidia = root / "fake-proc-driver-nvidia-gpus"
        self.sys = root / "fake-sys"
        self.drm = self.sys / "class" / "drm"
        self.dev = root / "fake-dev"
        self.nvidia.mkdir()
        self.drm.mkdir(parents=True)
        (self.dev / "dri").mkdir(parents=True)
        self._card("card0", "0000:02:00.0", render=None, dri_node=True)
        # A connector of the card: not a card.
        (self.drm / "card0-VGA-1").mkdir()

    @property
    def roots(self) -> tuple[str, str]:
        """The fake /proc/driver/nvidia/gpus and /sys/class/drm (facts.gather's gpu_roots)."""
        return str(self.nvidia), str(self.drm)

    def _card(self, name: str, bus: str, render: str | None, dri_node: bool) -> None:
        device = self.sys / "devices" / "pci0000:00" / bus
        node = device / "drm" / name
        node.mkdir(parents=True)
        (node / "device").symlink_to("../..")
        (self.drm / name).symlink_to(node)
        if render:
            (device / "drm" / render).mkdir()
        if dri_node:
            (self.dev / "dri" / name).touch()

    def gpu(
        self,
        minor: int,
        uuid: str,
        bus: str,
        card: str | None,
        render: str | None = None,
        *,
        dri_node: bool = True,
        nvidia_node: bool = True,
    ) -> None:
        """A GPU; `dri_node` False: its DRM card is in /sys but not in /dev/dri (a container
        given /dev/nvidia* alone)."""
        # The driver names the directory after the bus address.
        directory = self.nvidia / bus
        directory.mkdir()
        (directory / "information").write_text(INFORMATION.format(uuid=uuid, bus=bus, minor=minor))
        if card:
            self._card(card, bus, render, dri_node)
        if nvidia_node:
            (self.dev / f"nvidia{minor}").touch()

    def allocation(self, **env: str) -> Allocation | None:
        return egl_device(env, *self.roots, str(self.dev))

    def egl_device(self, **env: str) -> tuple[str, str] | None:
        chosen = self.allocation(**env)
        return (chosen.device, chosen.reason) if chosen else None

    def device(self, **env: str) -> str | None:
        chosen = self.egl_device(**env)
        return chosen[0] if chosen else None


@pytest.fixture
def host(tmp_path: Path) -> FakeGpuHost:
    """Two GPUs whose minor numbers are not in PCI bus order, and whose DRM card numbers
    are not their minor numbers."""
    fake = FakeGpuHost(tmp_path)
    fake.gpu(0, UUID_A, "0000:86:00.0", "card1", "renderD128")
    fake.gpu(1, UUID_B, "0000:18:00.0", "card2", "renderD129")
    return fake


def test_information_and_pci_addresses_are_read_as_the_driver_writes_them(
    host: FakeGpuHost,
) -> None:
    assert parse_information(INFORMATION.format(uuid=UUID_A, bus="0000:86:00.0", minor=3)) == Gpu(
        3, UUID_A, "0000:86:00.0"
    )
    assert parse_information("Model: \t\t something else\n") is None
    assert pci_address("00000000:3B:00.0") == pci_address("3b:00.0") == "0000:3b:00.0"
    assert sorted(g.minor for g in nvidia_gpus(str(host.nvidia))) == [0, 1]


def test_slurm_global_ids_are_device_minors_and_the_card_is_found_by_pci_address(
    host: FakeGpuHost,
) -> None:
    device, why = host.egl_device(SLURM_JOB_GPUS="1", CUDA_VISIBLE_DEVICES="0") or ("", "")
    assert device == "/dev/dri/card2"
    assert "0000:18:00.0" in why and "SLURM_JOB_GPUS=1" in why and "renderD129" in why
    # With the card's node here, no EGL device is listed: that costs a process.
    chosen = host.allocation(SLURM_JOB_GPUS="1")
    assert chosen is not None and chosen.egl is None
    # A job step's own GPUs come first; ranges are read.
    assert host.device(SLURM_STEP_GPUS="0-1", SLURM_JOB_GPUS="1") == "/dev/dri/card1"


@pytest.mark.parametrize(
    ("visible", "card"),
    [
        (UUID_A[:12], "card1"),  # a unique UUID prefix, as CUDA accepts
        (f"{UUID_B},{UUID_A}", "card2"),
        ("0", "card2"),  # an index counts in PCI bus order: 0000:18 before 0000:86
        ("1,0", "card1"),
    ],
)
def test_cuda_visible_devices_by_uuid_or_index(host: FakeGpuHost, visible: str, card: str) -> None:
    assert host.device(CUDA_VISIBLE_DEVICES=visible) == f"/dev/dri/{card}"


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"CUDA_VISIBLE_DEVICES": "NoDevFiles"},
        {"CUDA_VISIBLE_DEVICES": ""},
        {"SLURM_JOB_GPUS": ""},
    ],
)
def test_no_gpu_given_means_no_device(host: FakeGpuHost, env: dict[str, str]) -> None:
    assert host.device(**env) is None


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"SLURM_JOB_GPUS": "5"}, "no NVIDIA GPU has device minor 5"),
        ({"CUDA_VISIBLE_DEVICES": "MIG-1c2d3e4f"}, "names no single GPU"),
        ({"CUDA_VISIBLE_DEVICES": "GPU-"}, "names no single GPU"),
        ({"CUDA_VISIBLE_DEVICES": "7"}, "only 2 NVIDIA GPUs"),
    ],
)
def test_a_gpu_that_cannot_be_found_falls_back_to_the_first_egl_device_and_says_why(
    host: FakeGpuHost, env: dict[str, str], said: str
) -> None:
    device, why = host.egl_device(**env) or ("", "")
    assert device == "egl" and said in why


@pytest.mark.parametrize(
    ("env", "device"),
    [
        # A huge range is never expanded (it allocated 2 GB before failing): its first id counts.
        ({"SLURM_JOB_GPUS": "0-50000000"}, "/dev/dri/card1"),
        # Lists that name nothing are no GPU, not an internal error.
        ({"SLURM_JOB_GPUS": ","}, None),
        ({"SLURM_STEP_GPUS": " , ", "SLURM_JOB_GPUS": "1"}, "/dev/dri/card2"),
        ({"CUDA_VISIBLE_DEVICES": ",,"}, None),
        # An index too long for int() is out of range, not a crash.
        ({"CUDA_VISIBLE_DEVICES": "9" * 5000}, "egl"),
    ],
)
def test_odd_gpu_variables_are_read_without_failing(
    host: FakeGpuHost, env: dict[str, str], device: str | None
) -> None:
    assert host.device(**env) == device


@pytest.mark.parametrize(
    ("card", "said"),
    [
        (None, "no DRM card node (is the nvidia-drm module loaded?)"),
        ("card1", "has DRM card card1, but no /dev/dri/card1 here"),
    ],
)
def test_without_the_gpus_drm_node_nor_its_nvidia_node_the_first_egl_device_is_taken_unlisted(
    tmp_path: Path, card: str | None, said: str
) -> None:
    fake = FakeGpuHost(tmp_path)
    fake.gpu(0, UUID_A, "0000:86:00.0", card=card, dri_node=False, nvidia_node=False)
    chosen = fake.allocation(SLURM_JOB_GPUS="0")
    assert chosen is not None and chosen.device == "egl"
    assert said in chosen.reason and "no /dev/nvidia0" in chosen.reason
    # No EGL device can be a GPU whose node is not here: none were listed.
    assert chosen.egl is None


def listed(*devices: tuple[bool, str | None]) -> EglDevices:
    """EGL devices as egldevices.py lists them: whether each initialises, and its UUID."""
    found = []
    valid = 0
    for index, (initialises, uuid) in enumerate(devices):
        found.append(EglDevice(index, valid if initialises else None, uuid, None, None))
        if initialises:
            valid += 1
    return EglDevices(tuple(found))


GPU_B = Gpu(1, UUID_B, "0000:18:00.0")


@pytest.mark.parametrize(
    ("devices", "number", "said"),
    [
        # Counted as VirtualGL counts: among the devices that initialise.
        (listed((False, UUID_A), (True, None), (True, UUID_B)), 1, "is EGL device 1"),
        (listed((True, UUID_B.upper())), 0, "is EGL device 0"),
        (listed((True, UUID_A), (False, UUID_B)), None, "eglInitialize refuses its EGL device"),
        (listed((True, UUID_A), (True, None)), None, "no EGL device has its UUID (of 2 listed)"),
        (listed((True, None), (True, None)), None, "no EGL device gives its UUID"),
        (EglDevices((), "no EGL devices"), None, "could not be listed: no EGL devices"),
    ],
)
def test_the_gpus_egl_device_is_the_one_with_its_uuid(
    devices: EglDevices, number: int | None, said: str
) -> None:
    found, why = egl_device_of(GPU_B, devices)
    assert found == number and said in why


def test_the_allocated_gpu_is_virtualgls_default_after_an_explicit_vgl_display() -> None:
    facts = HostFacts(
        xvfb="/usr/bin/Xvfb",
        xpra=None,
        vglrun="vglrun",
        mesa_dirs=(),
        egl_devices=("/dev/dri/renderD128",),
        nvidia_egl=True,
        original_display="localhost:10.0",
        vgl_display=None,
        allocated_gpu=("/dev/dri/card2", "the allocated GPU 0000:18:00.0"),
    )
    virtualgl = make_plan(facts, Options()).candidates[0]
    # Before DISPLAY: sbatch passes on the submitting shell's (an ssh-forwarded one, say).
    assert virtualgl.prefix == ("vglrun", "-d", "/dev/dri/card2")
    assert virtualgl.reason == "the allocated GPU 0000:18:00.0"
    chosen = make_plan(facts, Options(vgl_display="egl1")).candidates[0]
    assert chosen.prefix[-1] == "egl1"
