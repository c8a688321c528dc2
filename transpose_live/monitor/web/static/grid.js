"use strict";
// The grid: one tile per camera with its newest annotated frame (refreshed once a second from latest.jpg,
// never faster than the image loads), state, fps, persons and last event; all updated over the websocket.
(() => {
  const grid = document.getElementById("grid");
  const tiles = new Map();

  function tile(name) {
    let t = tiles.get(name);
    if (t) return t;
    const root = TL.el("a", "tile");
    root.href = "/camera/" + encodeURIComponent(name);
    root.dataset.camera = name;
    const picture = TL.el("div", "picture");
    const img = TL.el("img", "frame");
    img.alt = name;
    img.hidden = true;
    const wait = TL.el("span", "muted", "waiting for a frame…");
    picture.append(img, wait);
    const info = TL.el("div", "info");
    const title = TL.el("div", "title");
    const state = TL.el("span", "state");
    title.append(TL.el("strong", "name", name), " ", state);
    const figures = TL.el("div", "figures muted");
    const last = TL.el("div", "last-event muted");
    info.append(title, figures, last);
    root.append(picture, info);
    grid.append(root);
    img.onload = () => { img.hidden = false; wait.hidden = true; img.dataset.loading = ""; };
    img.onerror = () => { img.dataset.loading = ""; };
    t = { root, img, state, figures, last, frames: -1 };
    tiles.set(name, t);
    document.getElementById("empty").hidden = true;
    return t;
  }

  function update(camera) {
    const t = tile(camera.name);
    TL.showState(t.state, camera.state);
    t.root.dataset.state = camera.state;
    t.figures.textContent = `${camera.fps.toFixed(1)} fps · ${TL.plural(camera.persons, "person")}`;
    if (camera.last_event) {
      t.last.textContent = `last: ${camera.last_event.type} at ${new Date(camera.last_event.time * 1000).toLocaleTimeString()}`;
    }
    if (camera.frames !== t.frames && camera.size && !t.img.dataset.loading) {
      t.frames = camera.frames;
      t.img.dataset.loading = "1";
      t.img.src = TL.url(TL.cameraPath(camera.name) + "/latest.jpg?n=" + camera.frames);
    }
  }

  TL.api("/api/cameras").then((cameras) => {
    cameras.forEach(update);
    document.getElementById("empty").hidden = cameras.length > 0;
  });
  TL.connect((message) => {
    if (message.type === "cameras") message.cameras.forEach(update);
    else if (message.type === "camera") update(message.camera);
  });
})();
