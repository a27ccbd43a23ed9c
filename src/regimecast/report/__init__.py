"""Reports: the render toolkit (HTML, Markdown, figures, JSON) and the forecast, update, compare,
diagnostics and backtest pages."""
