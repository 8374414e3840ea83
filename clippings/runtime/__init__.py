"""The torch-free runtime contract: preprocessing, the manifest, the ONNX embedder."""
