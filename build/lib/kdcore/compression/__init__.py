"""Compression and deployment: a student made smaller and faster, and predictions from the result.

``pruning`` removes channels physically (torch-pruning), ``onnx`` exports the student to ONNX and
quantizes it to static int8 (ONNX Runtime QDQ), ``predict`` loads any deployable student file
(``.safetensors``, ``.pth``, ``.onnx``) and answers for RGB images (``kd predict``). Which variants
a study makes and measures is the compress step's (``kdcore.study.work.compression``).

May import ``kdcore.models``, ``kdcore.data`` and the base modules; nothing above, and not
``kdcore.training``: a deployed student needs no training code.
"""
