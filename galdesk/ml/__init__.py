"""galdesk.ml: CNN classifiers for galaxy cut-outs and spectra (no Qt).

Importing this package is cheap: torch is imported only by the sub-modules that need it
(:mod:`galdesk.ml.models`, :mod:`galdesk.ml.train`, :mod:`galdesk.ml.infer`, ...), never here and never by
:mod:`galdesk.ml.device`, so that the window opens fast.

Sub-modules
-----------
device      choose_device(), describe_device()  (lazy torch import)
models      ImageCNN, SpectrumCNN
preprocess  the model card's preprocessing of a working-size stack
weights     save_model(), load_model(), list_bundled()  (safetensors + model card JSON)
train       TrainConfig, train_image_classifier()
infer       classify_stack(), evaluate(), suspect_labels()
spectra     prepare_spectra(), train_spectrum_classifier(), classify_spectra()
datasets    Galaxy Zoo 1 stack builder (for the bundled model, tests and benchmarks)
"""

__all__ = ["DEFAULT_MODEL"]

#: The bundled image classifier used when none is named (``resources/models/gz1-binary``).
DEFAULT_MODEL = "gz1-binary"
