"""What a detector relies on: spectra, colour, channels, shifts and adversarial inputs.

``fakescope analyze`` runs :func:`fakescope.analysis.suite.run_analysis`; each module here is
usable on its own with any detector (``predict_proba``) or torch detector (gradients).
"""
