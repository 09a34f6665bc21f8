"""A small BERT-style encoder written with plain ops so that it exports cleanly to ONNX opset 14.

Attention masks padding with an additive bias, so a row's outputs do not depend on the other rows of its batch.
"""
import json, math, os, random, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4


class Config:
    def __init__(self, vocab_size=8192, hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                 intermediate_size=512, max_position_embeddings=256, type_vocab_size=2, dropout=0.1):
        self.vocab_size, self.hidden_size, self.num_hidden_layers = vocab_size, hidden_size, num_hidden_layers
        self.num_attention_heads, self.intermediate_size = num_attention_heads, intermediate_size
        self.max_position_embeddings, self.type_vocab_size, self.dropout = max_position_embeddings, type_vocab_size, dropout

    def to_hf(self, **extra):
        d = {"model_type": "bert", "architectures": ["BertModel"], "vocab_size": self.vocab_size,
             "hidden_size": self.hidden_size, "num_hidden_layers": self.num_hidden_layers,
             "num_attention_heads": self.num_attention_heads, "intermediate_size": self.intermediate_size,
             "hidden_act": "gelu", "hidden_dropout_prob": self.dropout, "attention_probs_dropout_prob": self.dropout,
             "max_position_embeddings": self.max_position_embeddings, "type_vocab_size": self.type_vocab_size,
             "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": PAD, "position_embedding_type": "absolute"}
        d.update(extra)
        return d


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.h, self.dh = c.num_attention_heads, c.hidden_size // c.num_attention_heads
        self.qkv = nn.Linear(c.hidden_size, 3 * c.hidden_size)
        self.o = nn.Linear(c.hidden_size, c.hidden_size)
        self.ln1 = nn.LayerNorm(c.hidden_size, eps=1e-12)
        self.ff1 = nn.Linear(c.hidden_size, c.intermediate_size)
        self.ff2 = nn.Linear(c.intermediate_size, c.hidden_size)
        self.ln2 = nn.LayerNorm(c.hidden_size, eps=1e-12)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x, bias):
        b, t = x.size(0), x.size(1)
        q, k, v = self.qkv(x).view(b, t, 3, self.h, self.dh).permute(2, 0, 3, 1, 4)
        att = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(self.dh)) + bias
        att = self.drop(torch.softmax(att, dim=-1))
        y = torch.matmul(att, v).transpose(1, 2).reshape(b, t, self.h * self.dh)
        x = self.ln1(x + self.drop(self.o(y)))
        return self.ln2(x + self.drop(self.ff2(self.drop(F.gelu(self.ff1(x))))))


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.word = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=PAD)
        self.pos = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.typ = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.ln = nn.LayerNorm(c.hidden_size, eps=1e-12)
        self.drop = nn.Dropout(c.dropout)
        self.layers = nn.ModuleList([Layer(c) for _ in range(c.num_hidden_layers)])
        self.apply(init_weights)

    def forward(self, input_ids, attention_mask, token_type_ids, extra=None):
        t = input_ids.size(1)
        pos = self.pos.weight[:t].unsqueeze(0)
        x = self.word(input_ids) + pos + self.typ(token_type_ids)
        if extra is not None:  # per-token features added to the embeddings (LexicalQA)
            x = x + extra
        x = self.drop(self.ln(x))
        bias = (1.0 - attention_mask.to(x.dtype))[:, None, None, :] * -10000.0
        for layer in self.layers:
            x = layer(x, bias)
        return x


def init_weights(m):
    if isinstance(m, (nn.Linear, nn.Embedding)):
        nn.init.normal_(m.weight, std=0.02)
    if isinstance(m, nn.Linear) and m.bias is not None:
        nn.init.zeros_(m.bias)
    if isinstance(m, nn.Embedding) and m.padding_idx is not None:
        with torch.no_grad():
            m.weight[m.padding_idx].zero_()


def masked_mean(h, mask):
    m = mask.to(h.dtype).unsqueeze(-1)
    return (h * m).sum(1) / m.sum(1).clamp(min=1.0)


class QAModel(nn.Module):
    outputs = ["start_logits", "end_logits"]

    def __init__(self, c):
        super().__init__()
        self.enc = Encoder(c)
        self.qa = nn.Linear(c.hidden_size, 2)
        init_weights(self.qa)

    def forward(self, input_ids, attention_mask, token_type_ids):
        lg = self.qa(self.enc(input_ids, attention_mask, token_type_ids))
        return lg[..., 0], lg[..., 1]


class SeqModel(nn.Module):
    """Masked mean pooling, then a small MLP head: logits [batch, n]."""
    outputs = ["logits"]

    def __init__(self, c, n):
        super().__init__()
        self.enc = Encoder(c)
        self.pre = nn.Linear(c.hidden_size, c.hidden_size)
        self.head = nn.Linear(c.hidden_size, n)
        self.drop = nn.Dropout(c.dropout)
        init_weights(self.pre); init_weights(self.head)

    def forward(self, input_ids, attention_mask, token_type_ids):
        p = masked_mean(self.enc(input_ids, attention_mask, token_type_ids), attention_mask)
        return self.head(self.drop(torch.tanh(self.pre(p))))


class EmbedModel(nn.Module):
    outputs = ["last_hidden_state"]

    def __init__(self, c):
        super().__init__()
        self.enc = Encoder(c)

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.enc(input_ids, attention_mask, token_type_ids)


class MLMModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.enc = Encoder(c)
        self.tr = nn.Linear(c.hidden_size, c.hidden_size)
        self.ln = nn.LayerNorm(c.hidden_size, eps=1e-12)
        self.bias = nn.Parameter(torch.zeros(c.vocab_size))
        init_weights(self.tr)

    def forward(self, input_ids, attention_mask, token_type_ids):
        h = self.enc(input_ids, attention_mask, token_type_ids)
        return h

    def logits(self, h):
        return F.linear(self.ln(F.gelu(self.tr(h))), self.enc.word.weight, self.bias)


def load_config(path):
    with open(path) as fh:
        return Config(**json.load(fh))


def pad_batch(rows, key="ids", max_len=None):
    """rows with ids/tt lists -> (input_ids, attention_mask, token_type_ids) int64 tensors, right-padded."""
    t = max(len(r[key]) for r in rows)
    ids = torch.zeros(len(rows), t, dtype=torch.long)
    att = torch.zeros(len(rows), t, dtype=torch.long)
    tt = torch.zeros(len(rows), t, dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r[key])
        ids[i, :n] = torch.tensor(r[key]); att[i, :n] = 1
        if "tt" in r:
            tt[i, :n] = torch.tensor(r["tt"])
    return ids, att, tt


def length_batches(rows, batch_size, rng, key="ids", shuffle=True):
    """Group examples of similar length to cut padding; batches themselves are shuffled."""
    idx = list(range(len(rows)))
    if shuffle:
        rng.shuffle(idx)
    chunks = [idx[i:i + batch_size * 50] for i in range(0, len(idx), batch_size * 50)]
    batches = []
    for ch in chunks:
        ch.sort(key=lambda i: len(rows[i][key]))
        batches += [ch[i:i + batch_size] for i in range(0, len(ch), batch_size)]
    if shuffle:
        rng.shuffle(batches)
    return batches


class Schedule:
    def __init__(self, opt, lr, total, warmup=0.06):
        self.opt, self.lr, self.total, self.warm = opt, lr, total, max(1, int(total * warmup))
        self.step_n = 0

    def step(self):
        self.step_n += 1
        s = self.step_n
        f = s / self.warm if s < self.warm else max(0.0, (self.total - s) / max(1, self.total - self.warm))
        for g in self.opt.param_groups:
            g["lr"] = self.lr * f


def make_opt(model, lr, wd=0.01):
    decay, no = [], []
    for n, p in model.named_parameters():
        (no if p.ndim < 2 or "ln" in n else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": no, "weight_decay": 0.0}], lr=lr)


class EssayModel(nn.Module):
    """Coherence scorer. A token head estimates, per token, the probability that a reader would stumble there
    (trained on the known corrupted regions); the score head sees the masked mean of the encoder states plus the
    fraction and the count of such tokens. Exported output: logits [batch, n] only."""
    outputs = ["logits"]

    def __init__(self, c, n):
        super().__init__()
        self.enc = Encoder(c)
        self.tok = nn.Linear(c.hidden_size, 1)
        self.pre = nn.Linear(c.hidden_size, c.hidden_size)
        self.head = nn.Linear(c.hidden_size + 2, n)
        self.drop = nn.Dropout(c.dropout)
        init_weights(self.tok); init_weights(self.pre); init_weights(self.head)

    def forward_all(self, input_ids, attention_mask, token_type_ids):
        h = self.enc(input_ids, attention_mask, token_type_ids)
        m = attention_mask.to(h.dtype)
        tl = self.tok(h)[..., 0]
        p = torch.sigmoid(tl) * m
        s = p.sum(1, keepdim=True)
        feats = torch.cat([torch.tanh(self.pre(masked_mean(h, attention_mask))), s / m.sum(1, keepdim=True), s / 10.0], -1)
        return self.head(self.drop(feats)), tl

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.forward_all(input_ids, attention_mask, token_type_ids)[0]


class LexicalQA(nn.Module):
    """Extractive QA reader with lexical-match features computed inside the graph from the standard inputs.

    For every non-special token: does it also occur on the other side of the pair (context token in the question,
    question token in the context), as the same word piece ('exact') or as the same normalised form ('norm': case,
    accents and a few English suffixes folded; `norm_ids` is a constant vocab -> class table)? Matched context tokens
    also carry the inverse document frequency of their class (a constant table), and a small convolution over these
    match signals gives each token the density of question words around it. These are DrQA's exact-match features,
    made from `input_ids` and `token_type_ids` alone, so the gateway feeds the model exactly as any BERT QA export.
    Outputs start_logits/end_logits [batch, seq]; [CLS] (position 0) is the no-answer score."""
    outputs = ["start_logits", "end_logits"]

    def __init__(self, c, norm_ids, idf, conv_k=9):
        super().__init__()
        self.enc = Encoder(c)
        self.register_buffer("norm_ids", torch.as_tensor(norm_ids, dtype=torch.long))
        self.register_buffer("idf", torch.as_tensor(idf, dtype=torch.float32))
        self.match = nn.Embedding(5, c.hidden_size)  # 0 none, 1 ctx norm-only, 2 ctx exact, 3 q norm-only, 4 q exact
        self.idf_vec = nn.Parameter(torch.zeros(c.hidden_size))
        self.conv = nn.Conv1d(3, c.hidden_size, conv_k, padding=conv_k // 2)
        self.qa = nn.Linear(c.hidden_size, 2)
        for m in (self.match, self.conv, self.qa):
            init_weights(m)
        nn.init.normal_(self.conv.weight, std=0.02); nn.init.zeros_(self.conv.bias)

    def features(self, input_ids, attention_mask, token_type_ids):
        valid = (attention_mask > 0) & (input_ids >= 5)
        q = (valid & (token_type_ids == 0)).to(torch.float32)
        cx = (valid & (token_type_ids == 1)).to(torch.float32)
        nid = self.norm_ids[input_ids]
        ex = (input_ids[:, :, None] == input_ids[:, None, :]).to(torch.float32)
        nm = (nid[:, :, None] == nid[:, None, :]).to(torch.float32)
        sides = torch.stack([q, cx], -1)  # [b, t, 2]: how many question / context tokens each token equals (exact counts)
        hit_ex = (torch.matmul(ex, sides) > 0).to(torch.float32)
        hit_nm = (torch.matmul(nm, sides) > 0).to(torch.float32)
        c_ex, q_ex = hit_ex[..., 0] * cx, hit_ex[..., 1] * q
        c_nm, q_nm = hit_nm[..., 0] * cx, hit_nm[..., 1] * q
        kind = (c_nm + c_ex + 3 * q_nm + q_ex).long()  # 0, 1 (norm), 2 (exact, implies norm), 3, 4
        w = self.idf[input_ids] * c_nm
        sig = torch.stack([c_ex, c_nm, w], 1)  # [b, 3, t]
        return kind, w, sig

    def forward(self, input_ids, attention_mask, token_type_ids):
        kind, w, sig = self.features(input_ids, attention_mask, token_type_ids)
        extra = self.match(kind) + w[..., None] * self.idf_vec + self.conv(sig).transpose(1, 2)
        lg = self.qa(self.enc(input_ids, attention_mask, token_type_ids, extra))
        return lg[..., 0], lg[..., 1]


class LexicalRanker(LexicalQA):
    """Cross-encoder relevance model on LexicalQA's encoder and in-graph lexical-match features: [CLS] query [SEP] passage
    [SEP] -> logits [batch, 1] (higher = more relevant; the gateway reads sigmoid(logit)). Starts from a trained reader,
    whose [CLS] state already says whether the passage answers the question."""
    outputs = ["logits"]

    def __init__(self, c, norm_ids, idf):
        super().__init__(c, norm_ids, idf)
        self.pre = nn.Linear(c.hidden_size, c.hidden_size)
        self.head = nn.Linear(c.hidden_size, 1)
        init_weights(self.pre); init_weights(self.head)

    def forward(self, input_ids, attention_mask, token_type_ids):
        kind, w, sig = self.features(input_ids, attention_mask, token_type_ids)
        extra = self.match(kind) + w[..., None] * self.idf_vec + self.conv(sig).transpose(1, 2)
        h = self.enc(input_ids, attention_mask, token_type_ids, extra)
        return self.head(torch.tanh(self.pre(h[:, 0])))


def load_from_onnx(model, path):
    """Recover a fine-tuned model's weights from its exported ONNX graph: named initializers map to parameters;
    constant-folded MatMul weights (transposed nn.Linear weights) come in module order."""
    import onnx
    from onnx import numpy_helper
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer}
    sd = model.state_dict(); new = {}
    mats = [v for k, v in inits.items() if k.startswith("onnx::MatMul")]
    linear_w = [k for k in sd if k.endswith(".weight") and sd[k].ndim == 2 and k not in inits]
    assert len(mats) == len(linear_w), (len(mats), linear_w)
    for k, v in zip(linear_w, mats):
        assert tuple(v.T.shape) == tuple(sd[k].shape), k
        new[k] = torch.from_numpy(v.T.copy())
    for k in sd:
        if k in inits:
            new[k] = torch.from_numpy(inits[k].copy())
    model.load_state_dict(new)
