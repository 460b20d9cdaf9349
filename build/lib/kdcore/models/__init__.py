"""Models: the teachers (dual-branch RGB+IR, four families over one mechanism), the RGB-only
student, offline ImageNet weights, the student's file format (``checkpoint``) and the cost profile
(params, MACs, size, latency: ``profile``).

Names load their module on first use: the registry of teacher names needs no torch, the student
no timm, and only building a teacher loads timm. May import ``kdcore.data`` and the base modules;
nothing above.
"""

from importlib import import_module

_WHERE = {
    "Student": "student", "TEACHERS": "registry", "STUDY_TEACHERS": "registry", "TeacherSpec": "registry",
    "FAMILIES": "teachers", "DualBranchTeacher": "teachers", "create_teacher": "teachers",
    "create_backbone": "weights", "save_backbone": "weights",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'kdcore.models' has no attribute {name!r}")
    return getattr(import_module(f"kdcore.models.{_WHERE[name]}"), name)
