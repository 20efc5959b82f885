// A classic (blocking) script on purpose: it applies the remembered theme before the first
// paint, so a dark-theme user never sees a flash of the light page. No choice stored: the CSS
// follows prefers-color-scheme.
(function () {
  try {
    var theme = localStorage.getItem('ragkeep.theme');
    if (theme === 'light' || theme === 'dark') {
      document.documentElement.dataset.theme = theme;
    }
  } catch (e) {
    // Storage can be disabled; the system theme then applies.
  }
})();
