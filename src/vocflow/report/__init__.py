"""The study report: a standalone index.html built from whatever exists under results/."""
