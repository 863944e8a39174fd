"""Export: model folders to ONNX (and int8) for ONNX Runtime on edge devices."""
