"""Calibration of the order-book market from market data (docs/calibration.md).

- :mod:`calibration.params`: :class:`MarketParams`, the market's parameters;
- :mod:`calibration.sample`: canonical frames -> events located in the book, exposures;
- :mod:`calibration.glm`: Poisson GLMs with log-exposure offsets (statsmodels);
- :mod:`calibration.intensities`: CST 2010 and queue-reactive (HLR 2015) order-flow rates;
- :mod:`calibration.fill_curve`: ``A exp(-k delta)``; :mod:`calibration.volatility`: realized
  variance and Markov-switching regimes; :mod:`calibration.empirical`: spread chain, sizes;
- :mod:`calibration.calibrate`: all of them -> :class:`calibration.calibrate.Calibration`;
- :mod:`calibration.fit`: the command line (``python -m calibration.fit --data PATH``).

Importing this package is cheap: statsmodels loads with the fitting modules only.
"""
