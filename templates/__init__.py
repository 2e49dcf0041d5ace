# Package marker: the Jinja templates ship inside the wheel as wavegen.templates.
