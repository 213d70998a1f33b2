/**
 * The local models whose server refused audio (llama-server without an audio model's --mmproj: "audio
 * input is not supported"; Ollama: "invalid message format"), by server (serverKey, so one server
 * written two ways is one) and the model name a mode sends: one address may serve several models
 * (Ollama, a proxy that routes by name), and it is the model's --mmproj that hears. Shared by the
 * modes' brains (core.ts), so a turn whose history holds audio sends it as lines from its first
 * request, where each turn paid a request the server refused first.
 *
 * What ends it: the server heard audio since (a turn's own audio always goes to the server, so a
 * voice note finds out), or a probe found the server down or loading a model. A llama-server takes on
 * an audio --mmproj only by a restart, which passes through both, and a swap's start commands are
 * followed by probes until the model is loaded. Not a time: a model that hears nothing hears nothing
 * an hour later, and each turn of a conversation with a voice note in its history would pay the
 * refused request again.
 */
export class DeafModels {
  private readonly byServer = new Map<string, Set<string>>();

  has(server: string, model: string): boolean {
    return this.byServer.get(server)?.has(model) ?? false;
  }

  /** The server refused audio for `model`. */
  refused(server: string, model: string): void {
    let models = this.byServer.get(server);
    if (!models) {
      models = new Set();
      this.byServer.set(server, models);
    }
    models.add(model);
  }

  /** The server answered a request holding audio for `model`: it hears now. */
  heard(server: string, model: string): void {
    this.byServer.get(server)?.delete(model);
  }

  /** The server was down or loading a model: whatever it serves now may hear. */
  restarted(server: string): void {
    this.byServer.delete(server);
  }
}
