"""Publishing to Kaggle Models with the network call replaced by a fake: the right directory and
handle reach kagglehub.model_upload, and missing credentials or a bad handle fail in one line
before anything is sent."""

import json

import kagglehub
import pytest

from mpl_tf import publish

OWNER_HANDLE = "someone/mpl-cifar10-wrn/tensorFlow2"


@pytest.fixture
def hub_dir(tmp_path):
    """An export's hub/ directory, its SavedModels stubbed (the upload never reads them here)."""
    hub = tmp_path / "export" / "hub"
    for variant in ("classification", "feature-vector"):
        (hub / variant).mkdir(parents=True)
        (hub / variant / "saved_model.pb").write_bytes(b"")
        (hub / variant / "model-instance-metadata.json").write_text(
            json.dumps({"overview": f"{variant}: test accuracy 91.20% (0.9120)."}))
    return hub


@pytest.fixture
def uploads(monkeypatch):
    """Calls to kagglehub.model_upload, recorded instead of sent."""
    calls = []
    monkeypatch.setattr(kagglehub, "model_upload", lambda **kwargs: calls.append(kwargs))
    return calls


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "home" / ".kaggle"))


@pytest.fixture
def credentials(no_credentials, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "0123456789abcdef")


@pytest.mark.parametrize("variant", ["classification", "feature-vector"])
def test_uploads_the_variant_the_handle_names(hub_dir, uploads, credentials, capsys, variant):
    handle = f"{OWNER_HANDLE}/{variant}"
    assert publish.main(["publish", f"--export_dir={hub_dir}", f"--handle={handle}"]) == 0
    assert uploads == [{"handle": handle, "local_model_dir": str(hub_dir / variant),
                        "license_name": "Apache 2.0",
                        "version_notes": f"{variant}: test accuracy 91.20% (0.9120).",
                        "ignore_patterns": publish.METADATA_FILES}]
    assert f"uploaded {hub_dir / variant} as {handle}" in capsys.readouterr().out


def test_a_variant_directory_is_uploaded_as_it_is(hub_dir, uploads, credentials):
    handle = f"{OWNER_HANDLE}/cifar10-4000-labels"
    assert publish.main(["publish", f"--export_dir={hub_dir / 'classification'}",
                         f"--handle={handle}"]) == 0
    assert uploads[0]["local_model_dir"] == str(hub_dir / "classification")


def test_credentials_from_kaggle_json(hub_dir, uploads, no_credentials, tmp_path):
    config_dir = tmp_path / "home" / ".kaggle"
    config_dir.mkdir(parents=True)
    (config_dir / "kaggle.json").write_text(json.dumps({"username": "someone", "key": "k"}))
    assert publish.main(["publish", f"--export_dir={hub_dir}",
                         f"--handle={OWNER_HANDLE}/classification"]) == 0
    assert len(uploads) == 1


def test_without_credentials_it_says_how_to_set_them(hub_dir, uploads, no_credentials, capsys):
    assert publish.main(["publish", f"--export_dir={hub_dir}",
                         f"--handle={OWNER_HANDLE}/classification"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: no Kaggle credentials")
    assert "KAGGLE_USERNAME" in err and "KAGGLE_KEY" in err and "kaggle.json" in err
    assert uploads == []


@pytest.mark.parametrize("handle,message", [
    ("someone/mpl/tensorFlow2", "must be OWNER/MODEL/tensorFlow2/VARIATION"),
    ("someone/mpl/tensorFlow2/classification/3", "must be OWNER/MODEL/tensorFlow2/VARIATION"),
    ("someone/mpl/pyTorch/classification", "the framework must be tensorFlow2"),
    ("some one/mpl/tensorFlow2/classification", "owner 'some one'"),
    ("someone/MPL_Model/tensorFlow2/classification", "model 'MPL_Model' must be a slug"),
    ("someone/mpl/tensorFlow2/other", "holds no SavedModel for variation 'other'; its "
                                      "variants: classification, feature-vector"),
])
def test_bad_handles_fail_in_one_line(hub_dir, uploads, credentials, capsys, handle, message):
    assert publish.main(["publish", f"--export_dir={hub_dir}", f"--handle={handle}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert uploads == []


def test_a_failed_upload_is_one_line_and_status_1(hub_dir, credentials, monkeypatch, capsys):
    def refuse(**kwargs):
        raise ConnectionError("Kaggle is unreachable\nretry later")

    monkeypatch.setattr(kagglehub, "model_upload", refuse)
    assert publish.main(["publish", f"--export_dir={hub_dir}",
                         f"--handle={OWNER_HANDLE}/classification"]) == 1
    err = capsys.readouterr().err
    assert err == (f"error: publishing {OWNER_HANDLE}/classification failed: ConnectionError: "
                   "Kaggle is unreachable\n")


def test_missing_flags_and_export_dir(tmp_path, credentials, capsys):
    assert publish.main(["publish", f"--handle={OWNER_HANDLE}/classification"]) == 2
    assert "--export_dir and --handle are required" in capsys.readouterr().err
    assert publish.main(["publish", f"--export_dir={tmp_path / 'none'}",
                         f"--handle={OWNER_HANDLE}/classification"]) == 2
    assert "is not a directory; export the run first" in capsys.readouterr().err


def test_an_export_changed_since_its_run_recorded_it_is_not_uploaded(hub_dir, uploads,
                                                                     credentials, capsys):
    """What is uploaded is what the run exported: each file against its marker's sha256."""
    from mpl_tf.config import Config
    from mpl_tf.durable import marker

    run = hub_dir.parent.parent
    marker.write(str(run), marker.new(json.loads(Config().to_json()), ["mpl_tf.main"]))
    marker.record(str(run), ["export"])
    pb = hub_dir / "classification" / "saved_model.pb"
    pb.write_bytes(b"another graph")
    assert publish.main(["publish", f"--export_dir={hub_dir}",
                         f"--handle={OWNER_HANDLE}/classification"]) == 2
    [line] = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert line.startswith(f"error: {pb} is not the file the run wrote")
    assert uploads == []
