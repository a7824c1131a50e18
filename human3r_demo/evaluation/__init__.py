"""Evaluation: the paper's metrics as plain numpy functions (metres in, per-frame values out).

    from human3r_demo.evaluation import metrics
    metrics.pa_mpjpe(pred_joints, gt_joints)      # (T, J, 3) m -> (T,) mm
"""
