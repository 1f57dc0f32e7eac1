"""The directory that the launcher puts first on its Python children's PYTHONPATH, for its
sitecustomize.py (a package too, so that ensure_headless() imports the same code)."""
