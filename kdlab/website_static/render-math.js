// Typeset the TeX that nbconvert leaves in the page ($...$, $$...$$, \(...\), \[...\]) with the site's own KaTeX.
// A formula KaTeX cannot parse stays as red source and is reported on the console.
renderMathInElement(document.body, {
  delimiters: [
    {left: "$$", right: "$$", display: true},
    {left: "\\[", right: "\\]", display: true},
    {left: "$", right: "$", display: false},
    {left: "\\(", right: "\\)", display: false},
    {left: "\\begin{equation}", right: "\\end{equation}", display: true},
    {left: "\\begin{align}", right: "\\end{align}", display: true},
  ],
  throwOnError: false,
});
