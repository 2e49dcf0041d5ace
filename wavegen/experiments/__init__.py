"""The thesis's hybrid ScatterNet experiments: a scattering front end (wavegen's DTCWT
ScatterNet or Kymatio's Morlet one) before a small CNN, trained on CIFAR-10/100, Tiny
ImageNet or scikit-learn's digits. ``python -m wavegen.experiments train|grid|report``.

Needs the ``experiments`` extra (scikit-learn for digits, Pillow for Tiny ImageNet's JPEGs,
matplotlib for the report's figure, Kymatio for the Morlet front end); each is imported
where it is used, with an error naming the extra when it is missing.
"""
