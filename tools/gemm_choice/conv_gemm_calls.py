"""List the GEMM calls convcore's CPU convolution makes for real networks.

    python tools/gemm_choice/conv_gemm_calls.py [--threads 2]

Builds ResNet-18 / ResNet-50 / VGG16 (weights=None) and the MNIST convnet, reads every
Conv2D's geometry, and replays `schedule` / `conv_forward_tuned` / `conv_backward_impl`
of src/cpu/conv.rs (as of this commit) to print each GEMM (op, m, k, n, GEMM threads)
with its call count and share of the network's GEMM FLOPs. Keep it in step with
conv.rs by hand: it reimplements the piece arithmetic, it does not call it.
"""
import argparse
import collections

COL_BUDGET = 32 << 20
PIECE = 2 << 20
MIN_ROWS_LARGE = 512
MAX_PIECE = 16 << 20
TASKS = 32


def schedule(batch, kw, c_out, buffers, nt, elem=4):
    ntasks = min(TASKS, batch)
    gemm_threads = nt if ntasks < nt else 1
    tasks = [(i * batch // ntasks, (i + 1) * batch // ntasks) for i in range(ntasks)]
    per_row = max(buffers * kw * elem, 1)
    piece_rows = max(min(COL_BUDGET // ntasks, PIECE) // per_row, 1)
    if kw * c_out * elem > PIECE:
        piece_rows = max(piece_rows, min(MIN_ROWS_LARGE, max(MAX_PIECE // per_row, 1)))
    return tasks, piece_rows, gemm_threads


def pieces(tasks, positions, piece_rows):
    for b0, b1 in tasks:
        r, end = b0 * positions, b1 * positions
        while r < end:
            rows = min(piece_rows, end - r)
            yield rows
            r += rows


def conv_calls(batch, positions, kw, c_out, nt, backward, need_dx):
    """(op, m, k, n, threads) -> count; op is fwd (Col@W), dW (Col^T@dY), dCol (dY@W^T)."""
    out = collections.Counter()
    small_k = kw <= 32 and c_out % 8 == 0 and c_out // 8 in (1, 2, 4, 8)
    tasks, piece_rows, gt = schedule(batch, kw, c_out, 1, nt)
    if kw * c_out * 4 > PIECE:
        ranges = min(nt, batch)
        tasks = [(i * batch // ranges, (i + 1) * batch // ranges) for i in range(ranges)]
        gt = nt if ranges < nt else 1
    if not small_k:
        for rows in pieces(tasks, positions, piece_rows):
            out[("fwd", rows, kw, c_out, gt)] += 1
    if backward:
        tasks, piece_rows, gt = schedule(batch, kw, c_out, 2 if need_dx else 1, nt)
        for rows in pieces(tasks, positions, piece_rows):
            out[("dW", kw, rows, c_out, gt)] += 1  # C (kw x c_out) = Col^T (kw x rows) @ dY
            if need_dx:
                out[("dCol", rows, c_out, kw, gt)] += 1  # C (rows x kw) = dY (rows x c_out) @ W^T
    return out


def network_convs(name):
    """[(positions, kw, c_out, first_layer)] of every Conv2D of the network."""
    from convcore import applications, layers, mnist_demo
    if name == "mnist":
        m = mnist_demo.build_convnet()
    elif name == "resnet18":
        m = applications.ResNet18(weights=None)
    elif name == "resnet50":
        m = applications.ResNet50(weights=None)
    elif name == "vgg16":
        m = applications.VGG16(weights=None)
    res = []
    first = True
    for layer in m.layers:
        if type(layer).__name__ != "Conv2D":
            continue
        cin = layer.input.shape[-1]
        oh, ow, cout = layer.output.shape[1:]
        kh, kwid = layer.kernel_size
        res.append((oh * ow, kh * kwid * cin, cout, first, (kh, kwid, layer.strides[0])))
        first = False
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args()
    cases = [("mnist", 128, True), ("resnet18", 32, True), ("resnet50", 32, False),
             ("resnet50", 1, False), ("vgg16", 32, False), ("vgg16", 1, False)]
    for net, batch, train in cases:
        calls = collections.Counter()
        for positions, kw, c_out, first, _ in network_convs(net):
            calls.update(conv_calls(batch, positions, kw, c_out, args.threads, train, not first))
        flops = {c: 2 * c[1] * c[2] * c[3] * cnt for c, cnt in calls.items()}
        total = sum(flops.values())
        print(f"## {net} batch {batch} {'training' if train else 'inference'}: "
              f"{total / 1e9:.1f} GFLOP in GEMMs, {sum(calls.values())} calls")
        print("| op | m | k | n | threads | calls | share |")
        for c in sorted(flops, key=flops.get, reverse=True)[:args.top]:
            print(f"| {c[0]} | {c[1]} | {c[2]} | {c[3]} | {c[4]} | {calls[c]} | {100 * flops[c] / total:.1f} % |")
        print()


if __name__ == "__main__":
    main()
