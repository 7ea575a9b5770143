// Fits each slide to the deck's page as it is shown, so that a projector shows all of it: printed lines wrap,
// widest first, only where the slide would otherwise have to be zoomed below MIN_ZOOM to fit its width; then a
// slide still taller or wider than the page is zoomed out. kdlab's tests hold every slide of every deck to
// MIN_ZOOM. Runs after Reveal.initialize.
"use strict";

const MIN_ZOOM = 0.7;  // smaller, and a projector's back row cannot read the text

function fitSlide(slide) {
    const config = Reveal.getConfig();
    slide.style.zoom = "";
    const printouts = [...slide.querySelectorAll(".jp-OutputArea-output pre")];
    printouts.forEach((text) => text.classList.remove("kdlab-wrap"));
    printouts.sort((a, b) => b.scrollWidth - a.scrollWidth);
    for (const text of printouts) {
        if (config.width / slide.scrollWidth >= MIN_ZOOM) {
            break;
        }
        text.classList.add("kdlab-wrap");
    }
    const zoom = Math.min(1, config.height / slide.scrollHeight, config.width / slide.scrollWidth);
    slide.style.zoom = zoom < 1 ? zoom.toFixed(3) : "";
    slide.dataset.kdlabZoom = zoom.toFixed(3);
}

function fitCurrentSlide() {
    fitSlide(Reveal.getCurrentSlide());
    Reveal.layout();
}

Reveal.on("slidechanged", fitCurrentSlide);
if (Reveal.isReady()) {
    fitCurrentSlide();
} else {
    Reveal.on("ready", fitCurrentSlide);
}
document.fonts.ready.then(() => Reveal.isReady() && fitCurrentSlide());  // KaTeX's fonts change the sizes
