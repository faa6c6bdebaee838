// Syncline console: follow a running run on its page over server-sent events. The server sends
// `update` with the status and timeline (HTML it rendered and escaped) and `end` once the run ended.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !live.dataset.live || !window.EventSource) { return; }
  var heading = live.querySelector("h2");
  var source = new EventSource(live.dataset.live);
  source.addEventListener("update", function (event) {
    var holder = document.createElement("div");
    holder.innerHTML = event.data;
    live.replaceChildren(heading);
    while (holder.firstChild) { live.appendChild(holder.firstChild); }
  });
  source.addEventListener("end", function () {
    source.close();
    live.removeAttribute("data-live");
    live.setAttribute("data-ended", "true");
  });
})();
