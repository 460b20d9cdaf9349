"""Teachers (dual-branch RGB+IR, four families) and the RGB-only student."""

from kdcore.models.student import Student
from kdcore.models.teachers import (
    FAMILIES,
    STUDY_TEACHERS,
    TEACHERS,
    DualBranchTeacher,
    TeacherSpec,
    create_teacher,
)
from kdcore.models.weights import create_backbone, save_backbone

__all__ = ["FAMILIES", "STUDY_TEACHERS", "TEACHERS", "DualBranchTeacher", "Student", "TeacherSpec",
           "create_backbone", "create_teacher", "save_backbone"]
