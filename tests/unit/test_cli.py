from ccm.cli import main


def test_version_prints_package_version(capsys: object) -> None:
    assert main(["version"]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert out.startswith("vipam 0.")
