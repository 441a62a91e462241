"""Files onto disk: parallel, verified, atomic downloads, and a sync's per-project fetch.

``download``: each file fetched to a temp name, its sha256 checked, fsynced and
renamed into the tree, all its attempts under one deadline; a failed run takes back
what it added.  ``projects``: a full mirror's pages and the files the tree lacks,
project by project, in threads or worker processes.  ``provenance``: a file's
PEP 740 provenance, kept beside it once its form is checked.
"""
