"""The Jinja2 templates, shipped inside the package as digest.templates."""
