"""``pianoforge serve``: a local web page over the library (the cli layer: it may import inference,
improvise and evaluation; nothing below imports it).

- :mod:`pianoforge.web.command` -- the ``serve`` subcommand's flags (argparse only; cheap to import);
- :mod:`pianoforge.web.server` -- binding the socket (127.0.0.1 unless told otherwise) and running uvicorn;
- :mod:`pianoforge.web.app` -- the Starlette routes (JSON API + the static page in ``static/``);
- :mod:`pianoforge.web.uploads` -- size-limited uploads parsed as MIDI in memory, the checkpoint catalogue;
- :mod:`pianoforge.web.jobs` -- a worker pool of jobs with progress, each in a private temp folder;
- :mod:`pianoforge.web.tasks` -- the work: perform + reference + Figure 4, judge, improvise.

Starlette + uvicorn (the ``web`` extra) rather than Gradio: see docs/web.md.
"""
