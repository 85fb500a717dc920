"""Why did the classifier say what it said? Grad-CAM and occlusion maps for face crops.

Modules by job: ``scores`` (the target's log-odds from the model's logits), ``base`` (the
shared :class:`Explainer` and the :class:`Explanations` result), ``gradcam``, ``occlusion``,
``faithfulness`` (deletion / insertion curves), ``words`` (a map in words: where it looked, whether to
trust it), ``panel`` (drawing), ``suite`` (the configured set), ``frozen_frame`` (the live window's explain
session).
"""
