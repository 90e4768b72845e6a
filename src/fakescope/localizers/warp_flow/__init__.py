"""Warp detection and reversal: a network predicts a local warp's flow; its inverse undoes it.

See ``README.md`` in this folder; the localizer is
:class:`~fakescope.localizers.warp_flow.localizer.WarpFlowLocalizer` (registered as
``warp-flow``).
"""
