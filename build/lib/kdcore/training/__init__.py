"""Training: one fit loop for every role, the distillation losses and the validation criteria an
epoch is kept on.

``loop`` is the loop (AdamW, cosine schedule, early stopping, an atomic resume checkpoint at most
every 30 s, bf16 autocast and DDP on a GPU), ``losses`` the losses on logits and the teacher
outputs they read, ``methods`` the registry of distillation methods (``kd_loss:``, ``methods:``),
``objective`` a student's objective built from them, ``selection`` the criteria (``select_on:``). A fit is told its
settings (``FitSettings``) and where to write (``layout.FitPaths``); it knows nothing of studies.

May import ``kdcore.models``, ``kdcore.evaluation``, ``kdcore.data`` and the base modules; nothing above.
"""
