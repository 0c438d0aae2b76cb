"""Reference values of tests/new_measures.rs, from the float64 numpy reference
(../shared/reference/simref.py): the fixtures, and deterministic "random" data that the test
builds the same way (float32 values of a formula). Run from the repository root:

    python3 crates/similarity/tests/reference/new_measures.py
"""
import sys, os
import numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(__file__), '../../../../../shared/reference'))
import simref

FIX = os.environ.get('REPSIM_FIXTURES', os.path.join(os.path.dirname(__file__), '../../../../../shared/fixtures'))

def formula(n, d, seed):
    i = np.arange(n, dtype=np.float64)[:, None]
    j = np.arange(d, dtype=np.float64)[None, :]
    return (np.sin(0.7 * i + 1.3 * j + seed) * np.cos(0.011 * i * j + 0.5 * seed)
            + 0.1 * np.sin(3.1 * i * (seed + 1))).astype(np.float32)

def measures(x, y):
    return [
        ('mutual_knn', simref.mutual_knn(x, y, 10)),
        ('cknna', simref.cknna(x, y, 10, eps=0)),
        ('cknna_normalized', simref.cknna(simref.l2_normalize_rows(x), simref.l2_normalize_rows(y), 10, eps=0)),
        ('cknna_biased_normalized', simref.cknna(simref.l2_normalize_rows(x), simref.l2_normalize_rows(y), 10, unbiased=False, eps=0)),
        ('rsa', simref.rsa(x, y)),
        ('rsa_pearson', simref.rsa(x, y, compare='pearson')),
        ('rsa_euclidean', simref.rsa(x, y, rdm='euclidean')),
        ('rsa_euclidean_pearson', simref.rsa(x, y, rdm='euclidean', compare='pearson')),
        ('shape_1', simref.angular_shape_distance(x, y, 1.0)),
        ('shape_0.5', simref.angular_shape_distance(x, y, 0.5)),
        ('shape_0', simref.angular_shape_distance(x, y, 0.0)),
    ]

cases = {
    'formula': (formula(300, 12, 1.0), formula(300, 7, 2.0)),
    'demo': (np.load(f'{FIX}/kornblith_demo_x.npy'), np.load(f'{FIX}/kornblith_demo_y.npy')),
    'svhn': (np.load(f'{FIX}/svcca_svhn_model0_layer6.npy'), np.load(f'{FIX}/svcca_svhn_model1_layer6.npy')),
}
for name, (x, y) in cases.items():
    for measure, value in measures(x.astype(np.float64), y.astype(np.float64)):
        print(f'{name} {measure} {value:.12g}')
