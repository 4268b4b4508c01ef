"""slidenet.viz: see inside a network (needs matplotlib: ``pip install 'slidenet[plot]'``).

Not imported by ``import slidenet``; use ``import slidenet.viz``. Each ``plot_*`` returns a
matplotlib Figure (no pyplot, no window) and :func:`save_figure` writes it as a PNG:

* :func:`plot_filters`: a conv layer's kernels (first layer as images, deeper ones per channel);
* :func:`plot_activations`: the maps of every conv and pool layer for one input;
* :func:`plot_history`: loss and accuracy per epoch; :func:`plot_confusion_matrix`;
  :func:`plot_most_confused`: the most confident mistakes;
* :func:`plot_occlusion`, :func:`plot_saliency`, :func:`plot_feature_visualization`: where the
  evidence for a class is, and what a filter responds to (the arrays come from
  :func:`occlusion_map`, :func:`saliency_map`, :func:`feature_visualization`);
* :func:`write_report`: all of it in one self-contained HTML file (``slidenet report``).
"""

from __future__ import annotations

try:
    import matplotlib  # noqa: F401
except ImportError as err:  # pragma: no cover - the message is the point
    raise ImportError(
        "slidenet.viz needs matplotlib; install it with: pip install 'slidenet[plot]' "
        f"(or pip install matplotlib). ({err})"
    ) from None

from slidenet.viz.attribution import (
    activation_maps,
    class_probabilities,
    feature_visualization,
    occlusion_map,
    resolve_layer,
    saliency_map,
)
from slidenet.viz.figures import (
    confusion_matrix,
    figure_png,
    plot_activations,
    plot_confusion_matrix,
    plot_feature_visualization,
    plot_filters,
    plot_history,
    plot_most_confused,
    plot_occlusion,
    plot_saliency,
    save_figure,
)
from slidenet.viz.report import build_report, write_report

__all__ = [
    "activation_maps",
    "build_report",
    "class_probabilities",
    "confusion_matrix",
    "feature_visualization",
    "figure_png",
    "occlusion_map",
    "plot_activations",
    "plot_confusion_matrix",
    "plot_feature_visualization",
    "plot_filters",
    "plot_history",
    "plot_most_confused",
    "plot_occlusion",
    "plot_saliency",
    "resolve_layer",
    "saliency_map",
    "save_figure",
    "write_report",
]
