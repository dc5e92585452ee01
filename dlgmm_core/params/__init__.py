"""params.yaml: read, merged, checked and split into what each stage reads; one idea per module.

- :mod:`.read`: the file read as YAML 1.2, as DVC reads it;
- :mod:`.reader`: typed reads from a parameter tree, every error naming the key as params.yaml writes it;
- :mod:`.merge`: a protocol's settings merged into their sections, then the quick budget's overrides, each
  value's origin kept for the errors;
- :mod:`.schema`: what every key must hold (the model, training and evaluation sections through their
  config dataclasses);
- :mod:`.load`: :class:`~.load.Params`, the validated parameters of one protocol, for the ``resolve`` stage
  and for a stage reading its own resolved file;
- :mod:`.views`: the ``resolve`` stage's per-stage files;
- :mod:`.editor`: ``key=value`` edits that keep the file's comments (``tools/params.py set``).

Nothing is imported here, so that a module importing one of them loads no more than it needs.
"""
