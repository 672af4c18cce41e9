"""Cross-check of the adversarial numbers with PyTorch: the course's convnet, trained in
PyTorch on the same 8,000 shipped digits (10 epochs, batch 128, Adam 1e-3), attacked at
L-inf eps = 0.1 on the 2,000 test digits with FGSM and PGD-20 (alpha 0.0125, random
start). Compare with `python examples/adversarial.py`, which does the same in convcore.

    pip install torch && python benches/adversarial_torch.py

Measured 2026-11-27 on the 2-vCPU machine of BENCHMARKS.md: clean 0.978, FGSM 0.834,
PGD-20 0.763, 19.8 % of input-gradient entries exactly zero (convcore: 0.9725, 0.831,
0.750, 19.6 %).
"""
import numpy as np, torch, torch.nn.functional as F, sys
sys.path.insert(0, __import__('os').path.dirname(__import__('os').path.abspath(__file__))); from train import torch_convnet
from convcore.datasets import mnist10k
torch.manual_seed(0); torch.set_num_threads(2)
(xtr,ytr),(xts,yts)=mnist10k.load_data()
X=torch.from_numpy((xtr/255.0).astype(np.float32)[:,None]); Y=torch.from_numpy(ytr.astype(np.int64))
Xt=torch.from_numpy((xts/255.0).astype(np.float32)[:,None]); Yt=torch.from_numpy(yts.astype(np.int64))
net=torch_convnet(); opt=torch.optim.Adam(net.parameters(),1e-3)
for ep in range(10):
    net.train(); perm=torch.randperm(len(Y))
    for s in range(0,len(Y),128):
        i=perm[s:s+128]; opt.zero_grad(); F.cross_entropy(net(X[i]),Y[i]).backward(); opt.step()
net.eval()
acc=lambda x:(net(x).argmax(1)==Yt).float().mean().item()
with torch.no_grad(): print('clean',acc(Xt))
def grad(x):
    x=x.clone().requires_grad_(True); F.cross_entropy(net(x),Yt,reduction='sum').backward(); return x.grad
eps=0.1
g=grad(Xt); xa=(Xt+eps*g.sign()).clamp(0,1)
with torch.no_grad(): print('fgsm',acc(xa), 'zero-grad frac', (g==0).float().mean().item())
xa=(Xt+torch.empty_like(Xt).uniform_(-eps,eps)).clamp(0,1)
for _ in range(20):
    g=grad(xa); xa=(Xt+(xa+0.0125*g.sign()-Xt).clamp(-eps,eps)).clamp(0,1)
with torch.no_grad(): print('pgd20',acc(xa))
