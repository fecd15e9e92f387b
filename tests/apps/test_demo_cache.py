from aeradio.apps import demo
from aeradio.core.config import LinkConfig
from aeradio.core.model_dir import model_hash32

TINY = LinkConfig.from_dict(
    {
        "model": {"k": 2, "n": 1, "hidden_width": 8, "hidden_layers": 1},
        "training": {"steps": 30, "batch_size": 64},
    },
    name="tiny",
)


def test_default_model_is_cached_by_config_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("AERADIO_CACHE", str(tmp_path))
    monkeypatch.setattr(demo, "default_config", lambda: TINY)
    first = demo.ensure_default_model(progress=False)
    assert first.parent == tmp_path / "models" and first.name == f"tiny-{demo.config_hash(TINY)}"
    stamp = (first / "model.json").stat().st_mtime_ns
    assert demo.ensure_default_model(progress=False) == first
    assert (first / "model.json").stat().st_mtime_ns == stamp  # reused, not retrained
    # A damaged cache entry is retrained, not used.
    (first / "tx_lut.npy").write_bytes(b"garbage")
    again = demo.ensure_default_model(progress=False)
    assert again == first and model_hash32(again) >= 0
    # Another config is another entry.
    other = TINY.replace(training=TINY.training.__class__(steps=31, batch_size=64))
    assert demo.config_hash(other) != demo.config_hash(TINY)


def test_default_config_is_the_n7_k8_model():
    cfg = demo.default_config()
    assert (cfg.model.k, cfg.model.n) == (8, 7) and cfg.model.hidden_width <= 128
