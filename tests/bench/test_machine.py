"""The machine block bench results carry: CPU model, L2 size and a speed probe, read from the kernel's files."""

from bench.machine import cpu_model, describe, l2_cache, speed_probe_ms


def test_cpu_model_is_the_first_model_name(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\nprocessor\t: 1\nmodel name\t: other\n")
    assert cpu_model(cpuinfo) == "AMD EPYC 7B13"


def test_cpu_model_is_none_without_one(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nHardware\t: BCM2835\n")
    assert cpu_model(cpuinfo) is None
    assert cpu_model(tmp_path / "missing") is None


def test_l2_cache_is_the_level_2_entry(tmp_path):
    for index, (level, size) in enumerate([("1", "48K"), ("1", "32K"), ("2", "2048K"), ("3", "491520K")]):
        entry = tmp_path / f"index{index}"
        entry.mkdir()
        (entry / "level").write_text(f"{level}\n")
        (entry / "size").write_text(f"{size}\n")
    assert l2_cache(tmp_path) == "2048K"
    assert l2_cache(tmp_path / "missing") is None


def test_describe_probes_the_running_machine():
    machine = describe()
    assert machine["cpus"] >= 1
    assert machine["speed_probe_ms"] > 0
    assert speed_probe_ms(runs=3) > 0
