"""Training: one fit loop for every role, the distillation losses and the validation criteria an
epoch is kept on.

``loop`` is the loop (AdamW, cosine schedule, early stopping, an atomic resume checkpoint at most
every 30 s, bf16 autocast and DDP on a GPU), ``losses`` the registered KD losses (``kd_loss:``)
and the teacher outputs they read, ``selection`` the criteria (``select_on:``). A fit is told its
settings (``FitSettings``) and where to write (``layout.FitPaths``); it knows nothing of studies.

May import ``kdcore.models``, ``kdcore.evaluation``, ``kdcore.data`` and the base modules; nothing above.
"""
