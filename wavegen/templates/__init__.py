# Package marker: the Jinja templates, found as wavegen.templates from a source checkout and a wheel alike.
