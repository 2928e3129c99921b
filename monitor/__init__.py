"""monitor: watches news feeds for critical minerals and export controls.

Importing the package is cheap: scikit-learn, SQLModel and Jinja2 are imported only by the
modules that use them.
"""

__version__ = "0.1.0"

TOPICS = ("critical-minerals", "export-controls")
