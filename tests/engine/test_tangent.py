"""Tangent-space Lyapunov exponents against independent ground truth: closed forms (quadratic loss),
the cubic map, the eps-ball with a small eps, and dense Hessians from finite differences."""
import numpy as np
import pytest

from gdchaos import cubic, presets
from gdchaos.config import from_dict
from gdchaos.engine.sweep import run_unit
from gdchaos.engine.tangent import TangentCurve, TangentSpectrum
from gdchaos.engine.train import train
from gdchaos.engine.units import initial_conditions
from gdchaos.runner import prepare


def _diagonal(h):
    """The Product of quadratic losses L_r = 1/2 sum_i h_ri w_i^2: H_r = diag(h_r), whatever theta."""
    return lambda v, rows: h[rows] * v


def test_quadratic_loss_curve_is_the_closed_form():
    rng = np.random.default_rng(0)
    h = rng.uniform(-0.5, 3.0, size=(2, 6))
    eta = np.array([0.4, 0.9])
    xi = rng.uniform(-1e-8, 1e-8, size=(2, 6))
    curve = TangentCurve(xi)
    for t in range(1, 41):
        curve.step(_diagonal(h), eta, np.arange(2))
        # Phi_t xi = (1 - eta h)^t xi, exactly
        expected = np.log(np.abs((1 - eta[:, None] * h) ** t * xi).sum(axis=1))
        np.testing.assert_allclose(curve.log_norm, expected, rtol=1e-12)


@pytest.mark.parametrize("qr_every", [1, 4])
def test_quadratic_loss_spectrum_is_ln_abs_one_minus_eta_h(qr_every):
    rng = np.random.default_rng(1)
    n_params, epochs = 5, 400
    h = np.array([[0.1, 0.5, 1.0, 1.8, 3.5], [-0.2, 0.3, 0.7, 1.5, 2.6]])
    eta = np.array([0.5, 0.8])
    spectrum = TangentSpectrum(rng.standard_normal((2, n_params, n_params)), qr_every)
    for _ in range(epochs):
        spectrum.step(_diagonal(h), eta, np.arange(2))
    exact = np.sort(np.log(np.abs(1 - eta[:, None] * h)), axis=1)[:, ::-1]
    found = spectrum.exponents()
    # the sum is ln|det J| per epoch whatever the start; each exponent converges as O(1/T)
    np.testing.assert_allclose(found.sum(axis=1), exact.sum(axis=1), rtol=1e-10)
    np.testing.assert_allclose(found, exact, atol=0.02)
    assert np.all(spectrum.condition >= 1)


def test_cubic_map_exponent_matches_gdchaos_cubic():
    """One weight, L = w^4/4 - w^2/2 (H = 3 w^2 - 1): the map of ``gdchaos cubic``."""
    etas = np.array([0.3, 0.8, 1.2, 1.9])
    transient, orbit = 1000, 4000
    expected, escaped = cubic.lyapunov(etas, transient=transient, orbit=orbit)
    assert not escaped.any()
    w = cubic.initial_conditions(etas.size).copy()
    for _ in range(transient):
        w = w * (1 - etas * (w * w - 1))
    curve = TangentCurve(np.ones((etas.size, 1)))
    for _ in range(orbit):
        hessian = 3 * w * w - 1
        curve.step(lambda v, rows: hessian[rows, None] * v, etas, np.arange(etas.size))
        w = w * (1 - etas * (w * w - 1))
    found = curve.log_norm / orbit
    regular = expected < 0
    assert regular[:3].all() and expected[3] > 0.1  # premise: three periodic orbits, one chaotic
    np.testing.assert_allclose(found[regular], expected[regular], rtol=1e-9)
    assert found[3] == pytest.approx(expected[3], abs=0.03)  # another orbit of the same attractor


def _iris_unit(**values):
    base = dict(ics=3, replicas=1, eps=1e-8, epochs=40, tau_epochs=40, tangent=True)
    config = from_dict({**base, **values}, presets.get("iris-tanh")).validate()
    model, data, units = prepare(config)
    unit = units[0]
    balls = initial_conditions(model, config, unit.ic_start, unit.ic_stop)
    for event in run_unit(model, config, unit, data, balls):
        pass
    return config, model, data, balls, event.arrays


def test_iris_curve_is_the_small_ball_limit_and_goes_on_after_saturation():
    """ln d_1(t) of a ball with eps = 1e-8 within 1e-5 (relative, on d) while the ball is linear: the
    first epochs at a chaotic eta, every epoch at a regular one; past saturation the curve keeps growing."""
    _, _, _, _, arrays = _iris_unit(etas=[0.01, 1.0, 5.0], epochs=200, tau_epochs=200)
    tangent, ball = arrays["tangent_log_distance"], np.log(arrays["distances"][:, :, 0])
    assert np.isfinite(tangent).all()
    deviation = np.abs(np.expm1(tangent - ball))
    assert deviation[0, :, :].max() < 1e-5  # regular: d stays small
    assert deviation[1:, :, :8].max() < 1e-5  # chaotic: while d_1 is within ~1e4 eps
    # chaotic eta: d_1 saturates, the linearised separation does not
    chaotic = tangent[1]
    assert np.all(chaotic[:, -1] - ball[1, :, -1] > 5)
    # epochs 40-60: d_1 has saturated (ln d_1 ~ 1-3), the transient is still chaotic; later some
    # ICs turn regular, and which ones depends on round-off, so later windows make no robust test
    tangent_rate = (chaotic[:, 60] - chaotic[:, 40]) / 20
    ball_rate = (ball[1, :, 60] - ball[1, :, 40]) / 20
    assert tangent_rate.mean() > 0.25
    assert np.all(tangent_rate > 2 * ball_rate)


def test_iris_full_spectrum_sums_to_mean_log_det_of_dense_jacobians():
    """K = P: sum of the exponents = (1/T) sum_t ln|det(I - eta H(theta_t))|, with H from central
    differences of the gradient along the reference's own trajectory."""
    epochs = 12
    config, model, data, balls, arrays = _iris_unit(etas=[0.5, 5.0], ics=1, epochs=epochs, tau_epochs=epochs,
                                                    tangent=False, tangent_k=83)
    assert model.n_params == 83
    x, y = data[0], data[1]
    step = np.eye(model.n_params) * 1e-5
    for e, eta in enumerate(config.etas):
        theta = balls[:, 0].copy()
        log_det = 0.0
        for record in train(model, theta, eta, x, y, epochs - 1, keep_params=True):
            at = record.theta[0]
            hessian = (model.evaluate(at + step, x, y).grad - model.evaluate(at - step, x, y).grad) / 2e-5
            hessian = (hessian + hessian.T) / 2
            log_det += np.linalg.slogdet(np.eye(model.n_params) - eta * hessian)[1]
        expected = log_det / epochs
        spectrum = arrays["lyapunov_spectrum"][e, 0]
        assert spectrum.sum() == pytest.approx(expected, rel=1e-5, abs=1e-5)
        assert arrays["tangent_condition"][e, 0] >= 1


def test_first_spectrum_vector_follows_the_curve():
    """K = 1, QR every epoch: the exponent is the curve's growth rate in L2 instead of L1, so the two
    differ only by the ratio of norms at the ends (bounded by sqrt(P))."""
    _, model, _, _, arrays = _iris_unit(etas=[1.0], epochs=60, tau_epochs=60, tangent_k=1)
    curve = arrays["tangent_log_distance"]
    growth = (curve[..., -1] - curve[..., 0]) / 60
    assert np.all(np.abs(arrays["lyapunov_spectrum"][..., 0] - growth) <= np.log(model.n_params) / 60)


def test_divergence_gives_nan_from_the_first_non_finite_epoch():
    _, _, _, _, arrays = _iris_unit(etas=[1.0, 1e307], epochs=30, tau_epochs=30, tangent_k=2)
    loss, tangent = arrays["loss"], arrays["tangent_log_distance"]
    assert np.isfinite(tangent[0]).all() and np.isfinite(arrays["lyapunov_spectrum"][0]).all()
    blown = ~np.isfinite(loss[1])
    assert blown.any(axis=1).all()  # premise: every IC diverges at eta = 1e307 (the loss overflows)
    first = blown.argmax(axis=1)
    for i, t in enumerate(first):
        assert np.isfinite(tangent[1, i, :t]).all() and np.isnan(tangent[1, i, t:]).all()
    assert np.isnan(arrays["lyapunov_spectrum"][1]).all()


@pytest.mark.slow
def test_mnist_curve_is_the_small_ball_limit():
    """As on Iris, for 784-64-10 tanh on MNIST: a chaotic (10) and a regular (1) learning rate."""
    import gdchaos.data

    if not (gdchaos.data.dataset_dir("mnist") / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("MNIST is not in $GDCHAOS_DATA")
    values = dict(etas=[1.0, 10.0], ics=1, replicas=1, epochs=8, tau_epochs=8, etas_per_unit=1, tangent=True)
    config = from_dict(values, presets.get("mnist-tanh")).validate()
    model, data, units = prepare(config)
    balls = initial_conditions(model, config, 0, 1)
    arrays = {}
    for unit in units:
        for event in run_unit(model, config, unit, data, balls):
            pass
        arrays[unit.eta_start] = event.arrays
    for e in range(2):
        tangent, ball = arrays[e]["tangent_log_distance"], np.log(arrays[e]["distances"][:, :, 0])
        assert np.abs(np.expm1(tangent - ball)).max() < 1e-5
