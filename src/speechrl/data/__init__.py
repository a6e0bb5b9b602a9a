"""Datasets: every source (synthetic, LibriSQA, CoVoST2, ...) writes the one manifest format."""

from speechrl.data.manifest import Example, ManifestError, read_manifest, write_manifest

__all__ = ["Example", "ManifestError", "read_manifest", "write_manifest"]
