// Stands where the notebook pages would load MathJax from a CDN: the site works offline, and the
// tutorials write their formulas as text and code.
