// The browser softphone: microphone → 8 kHz μ-law media events → /phone/ws; bot audio played back;
// keypad → dtmf; transcript lines shown. The web app relays to the voice gateway (webapp/softphone.py).
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const root = $("phone");
  const callButton = $("call");
  const keys = Array.from(document.querySelectorAll(".keypad button"));
  const FRAME = 160; // 20 ms at 8 kHz
  const counts = { framesReceived: 0, samplesDecoded: 0, samplesPlayed: 0, framesSent: 0, clears: 0 };
  let ws = null, ctx = null, mic = null, micNode = null, micSource = null, downsampler = null;
  let nextTime = 0, playing = new Set(), inCall = false, ended = false;

  // --- G.711 μ-law ------------------------------------------------------------------------
  const DECODE = new Int16Array(256);
  for (let i = 0; i < 256; i++) {
    const u = ~i & 0xff, exponent = (u >> 4) & 7, mantissa = u & 0x0f;
    const s = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    DECODE[i] = u & 0x80 ? -s : s;
  }
  function encode(sample) { // float -1..1 → one μ-law byte
    let s = Math.max(-32768, Math.min(32767, Math.round(sample * 32767)));
    const sign = s < 0 ? 0x80 : 0;
    if (sign) s = -s;
    s = Math.min(s, 32635) + 0x84;
    let exponent = 7;
    for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; exponent--, mask >>= 1);
    return ~(sign | (exponent << 4) | ((s >> (exponent + 3)) & 0x0f)) & 0xff;
  }

  // --- capture: any context rate → 8 kHz (averaging each output sample's span) → 20 ms frames
  function Downsampler(rate, onFrame) {
    const ratio = rate / 8000;
    let pos = 0, acc = 0, n = 0, out = new Float32Array(FRAME), filled = 0;
    this.push = function (block) {
      for (let i = 0; i < block.length; i++) {
        acc += block[i]; n++; pos += 1;
        if (pos >= ratio) {
          pos -= ratio;
          out[filled++] = acc / n; acc = 0; n = 0;
          if (filled === FRAME) { onFrame(out); out = new Float32Array(FRAME); filled = 0; }
        }
      }
    };
  }
  function sendFrame(samples) {
    if (!ws || ws.readyState !== WebSocket.OPEN || !inCall) return;
    let bin = "";
    for (let i = 0; i < samples.length; i++) bin += String.fromCharCode(encode(samples[i]));
    ws.send(JSON.stringify({ event: "media", media: { payload: btoa(bin) } }));
    counts.framesSent++;
    if (counts.framesSent % 25 === 0) show();
  }
  async function startMicrophone() {
    try {
      mic = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true } });
    } catch (e) {
      banner("无法使用麦克风。请在浏览器里允许本页使用麦克风；没有麦克风也可以用数字键操作。");
      return;
    }
    downsampler = new Downsampler(ctx.sampleRate, sendFrame);
    micSource = ctx.createMediaStreamSource(mic);
    try {
      await ctx.audioWorklet.addModule("/static/phone-worklet.js");
      micNode = new AudioWorkletNode(ctx, "softphone-capture");
      micNode.port.onmessage = (e) => downsampler.push(e.data);
    } catch (e) { // older browsers: ScriptProcessor
      micNode = ctx.createScriptProcessor(2048, 1, 1);
      micNode.onaudioprocess = (e) => downsampler.push(e.inputBuffer.getChannelData(0));
    }
    const mute = ctx.createGain(); mute.gain.value = 0; // keep the node pulled without echoing the caller
    micSource.connect(micNode); micNode.connect(mute); mute.connect(ctx.destination);
  }

  // --- playback: μ-law → Float32 → AudioBuffers at 8 kHz, scheduled back to back ---------
  function play(payload) {
    let bytes;
    try { bytes = atob(payload); } catch (e) { return; }
    const n = bytes.length;
    if (!n || !ctx) return;
    counts.framesReceived++; counts.samplesDecoded += n;
    const buffer = ctx.createBuffer(1, n, 8000), data = buffer.getChannelData(0);
    for (let i = 0; i < n; i++) data[i] = DECODE[bytes.charCodeAt(i)] / 32768;
    const src = ctx.createBufferSource();
    src.buffer = buffer; src.connect(ctx.destination);
    const now = ctx.currentTime;
    if (nextTime < now + 0.02) nextTime = now + 0.08; // a small jitter buffer after a pause
    src.start(nextTime); nextTime += n / 8000;
    playing.add(src);
    src.onended = () => { if (playing.delete(src)) { counts.samplesPlayed += n; show(); } };
    if (counts.framesReceived % 10 === 0) show();
  }
  function clearPlayback() { // barge-in: drop what is queued
    const queued = Array.from(playing); playing = new Set();
    queued.forEach((src) => { try { src.stop(); } catch (e) { /* not started */ } });
    nextTime = 0; counts.clears++; show();
  }

  // --- page ---------------------------------------------------------------------------------
  function show() {
    root.dataset.framesReceived = counts.framesReceived;
    root.dataset.samplesDecoded = counts.samplesDecoded;
    root.dataset.samplesPlayed = counts.samplesPlayed;
    root.dataset.framesSent = counts.framesSent;
    root.dataset.clears = counts.clears;
  }
  function status(text) { $("status").textContent = text; }
  function banner(text) { const b = $("banner"); b.textContent = text; b.className = "banner error"; b.hidden = !text; }
  function setState(state) {
    root.dataset.state = state;
    const busy = state === "connecting" || state === "in-call";
    callButton.textContent = busy ? "挂断" : "拨打";
    callButton.classList.toggle("hangup", busy);
    keys.forEach((k) => { k.disabled = state !== "in-call"; });
  }
  function addLine(role, text) {
    if (!text) return;
    const line = document.createElement("div");
    line.className = "line " + role;
    const who = document.createElement("div");
    who.className = "who"; who.textContent = role === "bot" ? "智能客服" : "您";
    const body = document.createElement("div");
    body.className = "text";
    body.textContent = role === "caller" && /^[0-9*#]+$/.test(text) ? "按键 " + text
      : role === "caller" && text.charAt(0) === "/" ? "（按键选择）" : text;
    line.append(who, body);
    $("transcript").append(line);
    $("transcript").scrollTop = $("transcript").scrollHeight;
  }
  function heard(frames, level) {
    root.dataset.heardFrames = frames; root.dataset.heardLevel = level;
    const m = $("mic"); m.hidden = false;
    const loud = typeof level === "number" && level > -55;
    m.textContent = loud ? "🎤 对方能听到您的声音" : "🎤 对方听不到声音，请检查麦克风，或用数字键操作";
    m.classList.toggle("quiet", !loud);
  }
  const ENDINGS = {
    hangup: "通话已结束，感谢您的来电。",
    transfer: "需要人工为您办理。网页电话不能直接转到人工，请拨打 12333 热线，或到“文字咨询”里说“转人工”。",
    gateway: "通话中断了，请稍后重新拨打。",
  };
  function onMessage(raw) {
    let m; try { m = JSON.parse(raw.data); } catch (e) { return; }
    if (m.event === "media") play(m.payload);
    else if (m.event === "clear") clearPlayback();
    else if (m.event === "transcript") addLine(m.role, m.text);
    else if (m.event === "heard") heard(m.frames, m.level_dbfs);
    else if (m.event === "started") {
      inCall = true; setState("in-call");
      status("已接通。请听语音提示，可以直接说话，也可以按下面的数字键。");
    } else if (m.event === "ended") { finish(ENDINGS[m.reason] || ENDINGS.gateway); }
    else if (m.event === "error") {
      if (m.code === "invalid") return; // a frame the page got wrong: the call goes on
      banner(m.text || "电话服务暂时不可用，请稍后再试。");
      finish(m.text || "电话服务暂时不可用，请稍后再试。", "error");
    }
  }
  function stopAudio() {
    if (mic) mic.getTracks().forEach((t) => t.stop());
    if (micSource) micSource.disconnect();
    if (micNode) micNode.disconnect();
    mic = micSource = micNode = null;
  }
  function finish(text, state) {
    if (ended) return;
    ended = true; inCall = false;
    stopAudio();
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close();
    ws = null;
    setState(state || "ended");
    status(text);
  }
  async function call() {
    banner(""); ended = false;
    $("transcript").textContent = "";
    setState("connecting");
    status("正在接通，请稍候……");
    ctx = ctx || new (window.AudioContext || window.webkitAudioContext)();
    try { await ctx.resume(); } catch (e) { /* played once allowed */ }
    nextTime = 0;
    await startMicrophone();
    if (ended) return;
    ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/phone/ws");
    ws.onmessage = onMessage;
    ws.onclose = () => { if (!ended) finish(inCall ? ENDINGS.gateway : "电话服务暂未开通，请稍后再试，或使用文字咨询。", inCall ? "ended" : "error"); };
  }
  function hangUp() {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ event: "stop" }));
    clearPlayback();
    finish("您已挂断。");
  }
  function press(key) {
    if (!inCall || !ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify({ event: "dtmf", dtmf: { digit: key } }));
  }

  callButton.addEventListener("click", () => (root.dataset.state === "connecting" || root.dataset.state === "in-call" ? hangUp() : call()));
  keys.forEach((k) => k.addEventListener("click", () => press(k.dataset.key)));
  document.addEventListener("keydown", (e) => { if (/^[0-9*#]$/.test(e.key)) press(e.key); });
  setState("idle");
})();
