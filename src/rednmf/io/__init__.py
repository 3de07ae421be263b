"""Reading scenes and writing results; nothing here knows about detection."""

from rednmf.io.scene import Scene, read_scene
from rednmf.io.writers import ensure_dir, write_json, write_npy

__all__ = ["Scene", "ensure_dir", "read_scene", "write_json", "write_npy"]
