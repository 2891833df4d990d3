// Colour mode (Bootstrap 5.3's data-bs-theme on <html>): the system's setting unless the user
// chose one with the switch (#theme-switch), remembered in localStorage "theme".
// Loaded as a classic, blocking script in <head> (a static file, so a Content-Security-Policy
// needs no inline script), so the theme is set before the first paint and nothing flashes.
(() => {
  "use strict";
  const KEY = "theme";
  const CHOICES = ["light", "dark", "auto"];
  const media = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  const stored = () => {
    try {
      const value = window.localStorage.getItem(KEY);
      return CHOICES.includes(value) ? value : "auto";
    } catch {
      return "auto"; // storage disabled: follow the system
    }
  };
  const resolve = (choice) =>
    choice === "auto" ? (media && media.matches ? "dark" : "light") : choice;
  const apply = (choice) => {
    document.documentElement.setAttribute("data-bs-theme", resolve(choice));
    document.documentElement.dataset.themeChoice = choice;
  };

  apply(stored());
  if (media) {
    const follow = () => stored() === "auto" && apply("auto");
    if (media.addEventListener) media.addEventListener("change", follow);
    else if (media.addListener) media.addListener(follow);
  }

  // The switch: buttons with data-theme-value="light|dark|auto" (templates/base.html).
  const showChoice = (choice) => {
    document.querySelectorAll("[data-theme-value]").forEach((button) => {
      const active = button.dataset.themeValue === choice;
      button.classList.toggle("active", active);
      button.setAttribute("aria-pressed", String(active));
    });
    const icon = document.querySelector("#theme-switch .theme-icon");
    if (icon) {
      icon.className = `bi theme-icon ${
        { light: "bi-sun-fill", dark: "bi-moon-stars-fill", auto: "bi-circle-half" }[choice]
      }`;
    }
  };
  document.addEventListener("DOMContentLoaded", () => {
    showChoice(stored());
    document.querySelectorAll("[data-theme-value]").forEach((button) => {
      button.addEventListener("click", () => {
        const choice = button.dataset.themeValue;
        try {
          if (choice === "auto") window.localStorage.removeItem(KEY);
          else window.localStorage.setItem(KEY, choice);
        } catch {
          // not remembered, still applied to this page
        }
        apply(choice);
        showChoice(choice);
      });
    });
  });
  // Another tab changed it: follow.
  window.addEventListener("storage", (event) => {
    if (event.key === KEY || event.key === null) {
      apply(stored());
      showChoice(stored());
    }
  });
})();
