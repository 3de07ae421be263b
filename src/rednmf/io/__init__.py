"""Reading scenes and writing results; nothing here knows about detection."""

from rednmf.io.scene import Scene, read_map, read_scene
from rednmf.io.writers import ensure_dir, write_csv, write_json, write_npy

__all__ = ["Scene", "ensure_dir", "read_map", "read_scene", "write_csv", "write_json", "write_npy"]
