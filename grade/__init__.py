"""greenfoundry.grade: the rolling grade, the monthly grade snapshot and its report (grade/README.md)."""
