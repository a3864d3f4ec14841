"""Every FaceLab model folder: where its weights live, what they hash to, under which terms.

One `ModelEntry` per model. A model folder has the Hugging Face model-repo layout written by
`ConfigModule.save_pretrained` (core/models/common.py): config.json, model.safetensors (or
model-0000K-of-0000N.safetensors + model.safetensors.index.json) and README.md (model card).
It is found, in order, under $FACELAB_CHECKPOINTS/<folder>/, under checkpoints/<folder>/ in
this repository, then on the Hugging Face Hub at `repo_id`, pinned to `revision` (hub/store.py).

Adding a model is a few lines:
  1. train it so that its folder lands in checkpoints/<name>/ (or push it to the Hub);
  2. run `python -m hub hash checkpoints/<name> --name <name>`: it prints the `ModelEntry(...)`
     with every file's sha256;
  3. paste it below, fill in licence/data terms/retrain command, and add the entry to ENTRIES;
  4. name the class that builds it in core/loading.py `MODEL_CLASSES`.

The hub knows no model classes: it finds and verifies folders; core builds the models.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_SHA256 = re.compile(r"[0-9a-f]{64}")
_FOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # one plain folder name: no separator, no "..", no "~"
_COMMIT = re.compile(r"[0-9a-f]{40}")
# What a model folder may hold: configs, model cards and safetensors. Nothing that is unpickled.
ALLOWED_SUFFIXES = (".json", ".md", ".safetensors")


@dataclass(frozen=True)
class ModelEntry:
    name: str                      # key for hub.resolve(name) and core.loading.load_model(name); default folder name
    files: dict[str, str]          # file name in the folder -> sha256 hex digest
    licence: str                   # licence of the weights
    data_terms: str                # terms of the training data the weights inherit
    retrain: str                   # command line that rebuilds the folder
    repo_id: str | None = None     # Hugging Face model repo ("org/name"); None: not published
    revision: str | None = None    # pinned 40-hex commit of repo_id
    folder: str = ""               # folder name under checkpoints/ and $FACELAB_CHECKPOINTS; "" means `name`
    description: str = field(default="", compare=False)

    def __post_init__(self):
        if not self.folder:
            object.__setattr__(self, "folder", self.name)
        if not _FOLDER.fullmatch(self.folder) or ".." in self.folder:
            raise ValueError(f"{self.name}: folder {self.folder!r} must be one plain folder name (letters, digits, "
                             "'.', '_', '-'; no path separators, no '..')")
        if not self.files:
            raise ValueError(f"{self.name}: list the folder's files with their sha256 (python -m hub hash FOLDER)")
        for file, digest in self.files.items():
            if "/" in file or not file.endswith(ALLOWED_SUFFIXES):
                raise ValueError(f"{self.name}: {file!r} must be a top-level {'/'.join(ALLOWED_SUFFIXES)} file")
            if not _SHA256.fullmatch(digest):
                raise ValueError(f"{self.name}: {file}: {digest!r} is not a lowercase sha256 hex digest")
        if self.repo_id is not None and not (self.revision and _COMMIT.fullmatch(self.revision)):
            raise ValueError(f"{self.name}: a Hub repo needs a pinned revision (40-hex commit), got {self.revision!r}")


NC_LICENCE = "non-commercial research use only (inherited from the training data)"
CELEBAMASK_TERMS = "CelebAMask-HQ / CelebA: non-commercial research use only"

ENTRIES: tuple[ModelEntry, ...] = (
    ModelEntry(
        name="face-detector",
        files={
            "README.md": "aa220206d7139242ba4c1f0d9091d1865238eaf33b7f6effc7c4961a493978ec",
            "config.json": "bfd868bfb648f76a8e09ff86f41f4d528c44e274d8feb6570e9d0c621d54a527",
            "model.safetensors": "1d44490280585630799d6bd417c6e96859d99381737b39aa3d4c07489b2cf714",
        },
        licence=NC_LICENCE,
        data_terms=CELEBAMASK_TERMS + "; UTKFace: non-commercial research; CFP: research use; masked-face photos: research use",
        retrain="python -m train.frontend_data && python -m train.frontend --model detector --minutes 16 --device cuda",
        description="face detector (CenterNet-style, stride 4): boxes of faces with masks, glasses, hands, in profile",
    ),
    ModelEntry(
        name="face-landmarks",
        files={
            "README.md": "4cf7a8821a53859756879a02e61781379713eeee265e4000dbc571035ff66000",
            "config.json": "ee7ba8e103ab9b12100f0802f54a4c1592d5fc470590075d747afad7dc37c106",
            "model.safetensors": "ccb8442b2270e3313b7d633fb2cf2a347fed8a9b31689b1ee859bf25b3e5d88e",
        },
        licence=NC_LICENCE,
        data_terms=CELEBAMASK_TERMS + "; UTKFace: non-commercial research; CFP: research use; masked-face photos: research use",
        retrain="python -m train.frontend_data && python -m train.frontend --model landmarks --minutes 16 --device cuda",
        description="68 face landmarks + per-point visibility (one-hourglass FAN-style, soft-argmax), 128 px crop",
    ),
    ModelEntry(
        name="parser",
        files={
            "README.md": "89536e3ef459137f22f1ad58b1c7f33d43d450fae43a30b979b9af8271d8f073",
            "config.json": "bcaf84ab394e0c2241832635f8e3e75a6cf956edee5d54154d447f3cd054adaa",
            "model.safetensors": "e3b16cfaafd41bbbc4f4cd4f6c627a8b346767b8c1bd7b40b36d146b6bb1da5f",
        },
        licence=NC_LICENCE,
        data_terms=CELEBAMASK_TERMS + "; masked-face photos (RWMFD, Face-Mask-Detection): research use",
        retrain="python -m train.data && python -m train.parser --shards .cache/shards --ckpt .cache/ckpt/parser "
                "--out out/parser_run --minutes 22 --device cuda",
        description="face parser: 19 CelebAMask-HQ classes + occluder, 256 px aligned crops",
    ),
    ModelEntry(
        name="masked-vae",
        files={
            "README.md": "fe11d2bddd3f752c494482fa57d5067e739bfa405549040105b37548b83d7efe",
            "config.json": "1d964c8540a07eed1bcc3b5a4447dbac1ea985a2bc16c8169117254f3d225a6f",
            "model-00001-of-00002.safetensors": "83797a583b96d6523cdfd51e5868299154c263ccfdeaf1ca5381b01d81c9a274",
            "model-00002-of-00002.safetensors": "a2595daf326ff4a2f2f4b8267df33bc1e9377e5411180a90e6aaa7b14450a615",
            "model.safetensors.index.json": "f1a7e6c52b50c483d54ba268b6d559093595de9caddb877bebd917c8ebf06547",
        },
        licence=NC_LICENCE,
        data_terms=CELEBAMASK_TERMS,
        retrain="python -m train.data && python -m train.vae --model masked-vae --variant h9 --shards .cache/shards "
                "--ckpt .cache/ckpt --out out --minutes 20 --device cuda",
        description="masked VAE (Toledo & Antonelo), hypothesis H9, 144 px",
    ),
    ModelEntry(
        name="multistage-vae",
        files={
            "README.md": "70311f413d152738cd6b6bc4603e4aef561a21b89e99fb1ec48975f093e783b9",
            "config.json": "cefe3fabe62794def7e96b5fed41f5dd35d2cab365406f347b3db977d8bf704a",
            "model-00001-of-00003.safetensors": "252a5a80110b83e7a4dc63b5f5a6b4d80ca8a961798e9e428f6caca14edb0a97",
            "model-00002-of-00003.safetensors": "7a7e6b4f7cce4138c4b2004cfb13fb3ee7fac218f941474c1ff381fdb0533833",
            "model-00003-of-00003.safetensors": "0ba86642254d7082df6dd9e4027cab989aaab9d33e9486ed2d56d75bcd2d70bd",
            "model.safetensors.index.json": "b3a2539363acaff4c2a70c03e61f6a734bea5697d13c4ebd5ae27ecff2738994",
        },
        licence=NC_LICENCE,
        data_terms=CELEBAMASK_TERMS,
        retrain="python -m train.data && python -m train.vae --model multistage-vae --shards .cache/shards "
                "--ckpt .cache/ckpt --out out --minutes 20 --device cuda",
        description="multi-stage coarse-to-fine VAE (Cai, Gao & Ji), 128 px",
    ),
    ModelEntry(
        name="mask2face",
        files={
            "README.md": "ca0c77b014d48a55467d8364283e8081e0c837f6c6eebeaa1054b5f0b38c2879",
            "config.json": "0c482680bfe70535133cbb5bab6e2d6741d68573afd17e33b31e955a8d683cef",
            "model-00001-of-00002.safetensors": "7a8d5d13bdb22c3f60d1e95a70cb5c893f0036e33e5a8cd06cc9c920f42f648e",
            "model-00002-of-00002.safetensors": "b35c673c373e4e1835498efa66dbf7d738b46ca5f26865b6d85f62e28c22471d",
            "model.safetensors.index.json": "23add09893e38e4f020fdb266756171adc9ecc07958ca9063057f37d03d3edf3",
        },
        licence=NC_LICENCE,
        data_terms=CELEBAMASK_TERMS,
        retrain="python -m train.data && python -m train.mask2face --shards .cache/shards --ckpt .cache/ckpt/mask2face "
                "--out out/mask2face_run --minutes 22 --device cuda --parser checkpoints/parser",
        description="mask-to-face generator (SEAN-style per-region styles, mask-guided portrait editing), 256 px",
    ),
    ModelEntry(
        name="deocclusion",
        files={
            "README.md": "6441f78dfc7a7c4eb00b89f9aa4d759206b586f79b43e8ef179ca24538ec7708",
            "config.json": "a4ebd20bef7f790cfcc6a8d4cedcb676a26f326b61f2d6b32e807894fba3f90d",
            "model.safetensors": "76ab2251787ef672f4792de851fd45f1617c80ba6835b651f895e4abd52535a7",
        },
        licence=NC_LICENCE,
        data_terms=CELEBAMASK_TERMS + "; masked-face photos (RWMFD, Face-Mask-Detection): research use",
        retrain="python -m train.data && python -m train.deocclusion --shards .cache/shards "
                "--ckpt .cache/ckpt/deocclusion --out out/deocc --minutes 22 --device cuda",
        description="de-occlusion inpainter (gated convolutions + self-attention, Yin ch. 5), 256 px",
    ),
    ModelEntry(
        name="pose-sampler",
        files={
            "README.md": "40f962701795a996da6120aa7f97740910211e7eee33a725a1228bbfa920f157",
            "config.json": "0b1644ed454d9543cccca7a0c1aaa14b158a5183005fba389bd0f3d4d8246a7e",
            "model.safetensors": "cda0a6d7a806e903d50f135cd98ab0982b893b765f10922e658c69fafe2486e6",
        },
        licence=NC_LICENCE,
        data_terms="CelebA (identities) / CelebAMask-HQ: non-commercial research use only",
        retrain="python -m train.data && python -m train.pose --shards .cache/shards --ckpt .cache/ckpt/pose "
                "--out out/pose --minutes 20 --device cuda --arcface /root/weights/mobilefacenet_casia/model.safetensors",
        description="pose editing, stage 1: Pixel Attention Sampler (Yin ch. 3), 128 px",
    ),
    ModelEntry(
        name="pose-inpainter",
        files={
            "README.md": "d865935157aafe0347faab01ab7d77f2146a2052a8efc8333d56b1b7a785be76",
            "config.json": "50b3d7afe2a82b9372cfa42ef5eebe12e5d264e902e74901b7069b5c2cd24104",
            "model.safetensors": "257eb9c4185daff42b30c035b4dedbe47e4a1f52c78d5bd25061157f6c24c95e",
        },
        licence=NC_LICENCE,
        data_terms="CelebA (identities) / CelebAMask-HQ: non-commercial research use only",
        retrain="python -m train.data && python -m train.pose --shards .cache/shards --ckpt .cache/ckpt/pose "
                "--out out/pose --minutes 20 --device cuda --arcface /root/weights/mobilefacenet_casia/model.safetensors",
        description="pose editing, stage 2: inpainter with landmark + identity conditioning (Yin ch. 3), 128 px",
    ),
    ModelEntry(
        name="stylegan",
        files={
            "README.md": "927e0d1ecd806ad6e4cf08de88b53cd6267da7150a10fc53e664680108bd770f",
            "config.json": "2bab6cbd5663b05a68e19b45aa97dd3995719eab9eeffe7be7bdd7e382929ec7",
            "model-00001-of-00002.safetensors": "7ba1689cd6c8ef787d26839096f12212fc64a7f7c7383cf28d210e658c82ddb3",
            "model-00002-of-00002.safetensors": "8f0deb9e52b8e111879b763e0aa0c78036b11efe2b92b9d7722d0214bedece5a",
            "model.safetensors.index.json": "ef0284371f27645c4d9aa19ecf02fa6c162f042ad404eac8c0a21d8298ef4bd7",
        },
        licence=NC_LICENCE,
        data_terms=CELEBAMASK_TERMS,
        retrain="python -m train.data && python -m torch.distributed.run --standalone --nproc_per_node 3 -m train.stylegan "
                "--shards .cache/shards --ckpt .cache/ckpt/stylegan --out out --minutes 22 --device cuda "
                "--eyeglasses-repeat 4 (resumes; 2036 kimg over 5 sessions)",
        description="StyleGAN2-like face generator (EMA), 128 px, 12 style layers",
    ),
    ModelEntry(
        name="mtv-encoder",
        files={
            "README.md": "21dfdef7ea27e58cc6ec94981ac9f7347c41a1b90ef902aa937144b7a89e0970",
            "config.json": "a1aed4a94499bb09e92cd913268e9dee0b134354ca87d67e15ad6ca3923b3256",
            "model-00001-of-00002.safetensors": "9ae7cd6997017cbef3e81169de2b4a619915a45f802d1da0ea3de96439b3b44e",
            "model-00002-of-00002.safetensors": "333376a4da40a20ba2a58661f74a45278a51aa6949f7a800b5343c89fd9a140e",
            "model.safetensors.index.json": "344f4c7fd70e4865a39d08c6ff91ff2205cfe9505823d320e14b90d82bc059c9",
        },
        licence=NC_LICENCE,
        data_terms=CELEBAMASK_TERMS,
        retrain="python -m train.encoder --generator checkpoints/stylegan --init EXPORTED_ENCODER --shards .cache/shards "
                "--ckpt .cache/ckpt/encoder --out out --minutes 20 --device cuda --channel-base 8192 --phase1-frac 0.5 "
                "--arcface /root/weights/mobilefacenet_casia/model.safetensors",
        description="MTV-TSA GAN-inversion encoder (aligned 128 px crop -> w+) for the 'stylegan' generator",
    ),
    ModelEntry(
        name="directions",
        files={
            "README.md": "a8f273374cddbac719ebb60c7437a5125d384495c01285f7d400b4f6b79ef21a",
            "config.json": "ce45e20db8e82135e3f3fe2258ef87640494d0fb06968bfc63f6f13c2b8752f4",
            "directions.json": "6eb381375ce5e424c388582ddb733dbf188639d9b12e6e32a93fe489d3870dbf",
            "directions.safetensors": "c03b5c35441e81e37e46d7df23c0e63133291ad3fe60b978d3c25a15fc6881d8",
        },
        licence=NC_LICENCE,
        data_terms=CELEBAMASK_TERMS + "; labels from UTKFace (non-commercial research use)",
        retrain="python -m train.attributes --shards .cache/shards --out out/attr --minutes 3.5 --device cuda && "
                "python -m train.directions --generator checkpoints/stylegan --attributes out/attr/attributes "
                "--out out --device cuda",
        description="InterFaceGAN attribute directions in W for the 'stylegan' generator (the Invert & edit sliders)",
    ),
)

MODELS: dict[str, ModelEntry] = {entry.name: entry for entry in ENTRIES}
