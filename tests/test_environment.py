"""The three descriptions of the environment must agree: requirements/lock.txt (exact pins, what the Makefile
installs), environment.yml (conda users) and pyproject.toml (compatible ranges, what Colab installs)."""
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def read_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"{path.name}: {line!r} is not pinned with =="
        pins[canonical(name)] = version.strip()
    return pins


def conda_pip_pins() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml needs exactly one pip: section"
    pins = {}
    for spec in pip_sections[0]:
        req = Requirement(spec)
        (specifier,) = list(req.specifier)
        assert specifier.operator == "==", f"environment.yml: {spec!r} must be an exact pin"
        pins[canonical(req.name)] = specifier.version
    return pins


def test_environment_yml_agrees_with_the_lock_file():
    lock = read_pins(ROOT / "requirements" / "lock.txt")
    conda = conda_pip_pins()
    missing = sorted(set(conda) - set(lock))
    assert not missing, f"in environment.yml but not in requirements/lock.txt: {missing}"
    differ = {n: (v, lock[n]) for n, v in conda.items() if lock[n] != v}
    assert not differ, f"versions differ (environment.yml, lock.txt): {differ}"


def test_every_direct_requirement_is_in_environment_yml():
    direct = read_pins(ROOT / "requirements" / "direct.txt")
    conda = conda_pip_pins()
    assert set(direct) == set(conda), f"direct.txt vs environment.yml: {sorted(set(direct) ^ set(conda))}"
    assert direct == conda


def test_python_version_agrees():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pythons = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert pythons == ["python=3.11"]
    header = (ROOT / "requirements" / "lock.txt").read_text().splitlines()[0]
    assert "Python 3.11" in header


def test_pyproject_ranges_admit_the_locked_versions():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = read_pins(ROOT / "requirements" / "lock.txt")
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs += extra
    for spec in specs:
        req = Requirement(spec)
        name = canonical(req.name)
        assert name in lock, f"pyproject needs {req.name}, which the lock file does not pin"
        version = Version(lock[name].split("+")[0])
        assert req.specifier.contains(version, prereleases=True), f"{spec!r} excludes the locked {lock[name]}"


def test_pyproject_declares_ranges_not_pins():
    """Installing the package on Colab must keep Colab's own CUDA torch: no exact pins in pyproject."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec in project["dependencies"]:
        assert "==" not in spec, f"pyproject pins {spec!r}; pins belong in requirements/lock.txt"


def test_jupyter_book_is_version_1():
    lock = read_pins(ROOT / "requirements" / "lock.txt")
    assert Version(lock["jupyter-book"]).major == 1, "jupyter-book 2 is a different tool"


@pytest.mark.parametrize("name", ["torch", "torchvision"])
def test_torch_pair_is_the_one_that_works_here(name):
    lock = read_pins(ROOT / "requirements" / "lock.txt")
    assert lock[name] == {"torch": "2.14.1", "torchvision": "0.29.1"}[name]
