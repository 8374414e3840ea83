"""The manifest: typed and closed. The shipped ones load and save back byte for byte; a key the
runtime does not know fails the load, naming the key and the file."""

import json
import re
import shutil

import pytest

from clippings.errors import ModelError
from clippings.runtime.manifest import MANIFEST_NAME, Manifest
from clippings.runtime.onnx_model import SHIPPED_MODELS_DIR, OnnxEmbedder
from clippings.runtime.preprocess import PreprocessConfig


@pytest.mark.parametrize("name", ["news", "jp-firms"])
def test_shipped_manifests_load_and_save_unchanged(name, tmp_path):
    manifest = Manifest.load(SHIPPED_MODELS_DIR / name)
    assert isinstance(manifest.preprocess, PreprocessConfig)
    manifest.save(tmp_path)
    assert (tmp_path / MANIFEST_NAME).read_bytes() == (SHIPPED_MODELS_DIR / name / MANIFEST_NAME).read_bytes()


def edited(tmp_path, edit) -> None:
    """A copy of the news model with its manifest edited by edit(dict)."""
    shutil.copytree(SHIPPED_MODELS_DIR / "news", tmp_path, dirs_exist_ok=True)
    d = json.loads((tmp_path / MANIFEST_NAME).read_text())
    edit(d)
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(d))


@pytest.mark.parametrize("edit, key", [
    (lambda d: d["preprocess"].update(image_heigth=32), "preprocess.image_heigth"),
    (lambda d: d["thresholds"].update(dedupe=0.9), "thresholds.dedupe"),
    (lambda d: d.update(imageweight=0.5), "imageweight"),
    (lambda d: d["inputs"][0].update(layout="NCHW"), "inputs.0.layout"),
])
def test_an_unknown_key_fails_the_load_by_name(tmp_path, edit, key):
    edited(tmp_path, edit)
    with pytest.raises(ModelError, match=re.escape(f"{tmp_path / MANIFEST_NAME}: invalid manifest: unknown key '{key}'")):
        OnnxEmbedder(tmp_path)


def test_a_missing_threshold_fails_the_load_by_name(tmp_path):
    edited(tmp_path, lambda d: d["thresholds"].pop("link"))
    with pytest.raises(ModelError, match="missing key 'thresholds.link'"):
        Manifest.load(tmp_path)


def test_a_checkpoint_config_with_an_unknown_preprocessing_key_is_refused():
    d = PreprocessConfig().to_dict()
    assert PreprocessConfig.from_dict(d) == PreprocessConfig()
    with pytest.raises(TypeError, match="'pad_colour'"):
        PreprocessConfig.from_dict({**d, "pad_colour": 255})
