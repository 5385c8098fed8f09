"""The web UI: plain HTML, CSS and JavaScript, no build step, served by ``workflow serve``
at ``/`` (this folder ships in the wheel as the package ``workflow.webui``)."""
