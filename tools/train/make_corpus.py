#!/usr/bin/env python3
"""Seeded generator of simple children's stories: the corpus Flotilla's own models are trained on.

Every word comes from the grammar below (the project's own text, MIT like the rest of the repository),
so the corpus may be redistributed and trained on freely. Each story follows one plot: a hero in a place,
a wish or a problem, a first attempt that fails, help from a friend, a resolution, a feeling and a
lesson — with quoted dialogue throughout.

    /usr/bin/python3 tools/train/make_corpus.py --out .tmp/train/corpus --stories 7000 --seed 1

writes train.txt and valid.txt (one story per line; the held-out split is every 20th story).
"""
import argparse
import os
import random

GIRLS = ["Lily", "Mia", "Sara", "Anna", "Emma", "Lucy", "Zoe", "Ella", "Rosa", "Nina", "Ruby", "Amy",
         "Kate", "Maya", "Ivy", "Luna", "Grace", "Hana", "Jade", "Tess"]
BOYS = ["Tom", "Ben", "Max", "Sam", "Leo", "Jack", "Tim", "Finn", "Noah", "Omar", "Kai", "Luke",
        "Eli", "Jon", "Ravi", "Theo", "Owen", "Pablo", "Hugo", "Dan"]
# (kind, sound it makes or None)
KINDS_PERSON = ["girl", "boy"]
ANIMALS = [("cat", "purred"), ("dog", "barked"), ("bunny", None), ("bird", "sang"), ("bear", "growled"),
           ("fox", None), ("mouse", "squeaked"), ("duck", "quacked"), ("frog", "croaked"), ("owl", "hooted"),
           ("turtle", None), ("pig", "oinked"), ("lamb", None), ("squirrel", None), ("puppy", "barked"),
           ("kitten", "meowed"), ("hen", "clucked"), ("goat", None)]
HERO_ADJ = ["little", "happy", "kind", "brave", "shy", "curious", "small", "clever", "friendly", "gentle",
            "cheerful", "funny", "quiet", "busy", "playful"]
PLACES = [("a small town", "the town"), ("a big forest", "the forest"), ("a little house by the sea", "the beach"),
          ("a farm", "the farm"), ("a quiet village", "the village"), ("a green valley", "the valley"),
          ("a tall tree", "the woods"), ("a cozy house", "the garden"), ("a busy city", "the park"),
          ("a sunny meadow", "the meadow"), ("a hill near a river", "the river"), ("a warm cave", "the hills")]
FAMILY = ["mom", "dad", "grandma", "grandpa", "big sister", "big brother", "aunt", "uncle"]
LOVES = ["play outside", "run in the grass", "draw pictures", "sing songs", "read books", "climb trees",
         "help others", "look at the stars", "build with blocks", "jump in puddles", "bake cookies",
         "dance", "splash in the water", "pick flowers", "play with toys", "go on walks"]
COLORS = ["red", "blue", "yellow", "green", "pink", "purple", "orange", "shiny", "golden", "white", "little",
          "big", "soft", "bright", "striped"]
# (object, where it gets stuck, what can break/happen)
OBJECTS = ["ball", "kite", "balloon", "hat", "box", "key", "book", "toy car", "doll", "shell", "ring",
           "teddy bear", "boat", "drum", "cup", "map", "scarf", "crayon", "bell", "flower", "rock", "feather",
           "jar", "blanket", "basket", "wagon", "star", "button", "whistle", "spoon"]
FOUND_AT = ["under a bush", "in the grass", "near the pond", "behind a big rock", "in an old box",
            "on the path", "by the fence", "in the sand", "under the bed", "next to a tree", "in the attic",
            "on a bench", "by the door", "in a puddle"]
HIGH = ["a tall tree", "the roof", "a high shelf", "the top of the fence", "a big rock", "the branch of an old tree"]
FRIEND_ADJ = ["wise", "big", "old", "kind", "tall", "strong", "fast", "little", "friendly", "smart"]
FEEL_GOOD = ["happy", "proud", "glad", "excited", "thankful", "warm inside", "very happy", "so happy"]
FEEL_BAD = ["sad", "worried", "upset", "scared", "grumpy", "lonely", "confused", "frustrated"]
WEATHER = ["The sun was shining", "The sky was blue", "It was a windy day", "The birds were singing",
           "It was a warm morning", "Snow covered the ground", "It was a cool autumn day", "Rain fell softly"]
TIMES = ["One day", "One morning", "One sunny day", "One afternoon", "One evening", "Later that day",
         "The next day", "One cold day"]
LESSONS = ["it is good to share", "friends help each other", "it is good to ask for help",
           "you should never give up", "being kind makes everyone happy", "it is good to be careful",
           "trying again is brave", "working together makes hard things easy", "it is nice to say thank you",
           "it is fun to learn new things", "saying sorry makes things better", "patience is a good thing"]
ENDINGS = ["From that day on, {a} and {b} were best friends.", "They played together until the sun went down.",
           "{A} smiled all the way home.", "That night, {a} went to sleep with a big smile.",
           "It was the best day ever.", "And they all lived happily ever after.",
           "{A} hugged {b} and said, \"Thank you.\"", "Everyone laughed and clapped."]


class Hero:
    def __init__(self, rng, other_name=None):
        self.animal = rng.random() < 0.45
        female = rng.random() < 0.5
        names = GIRLS if female else BOYS
        self.name = rng.choice([n for n in names if n != other_name])
        if self.animal:
            self.kind, self.sound = rng.choice(ANIMALS)
        else:
            self.kind, self.sound = ("girl" if female else "boy"), None
        self.he, self.him, self.his = ("she", "her", "her") if female else ("he", "him", "his")

    @property
    def He(self):
        return self.he.capitalize()

    @property
    def His(self):
        return self.his.capitalize()


def a_an(word):
    return ("an " if word[0] in "aeiou" else "a ") + word


def say(rng, who, line, verb="said"):
    """Quoted dialogue in one of three shapes. `line` ends with . ! or ?"""
    shape = rng.randrange(3)
    if shape == 0:
        return f"{who} {verb}, \"{line}\""
    if shape >= 1 and line.endswith("."):
        return f"\"{line[:-1]},\" {verb} {who}."
    return f"\"{line}\" {verb} {who}."


def opening(rng, h, place):
    adj = rng.choice(HERO_ADJ)
    forms = [
        f"Once upon a time, there was {a_an(adj)} {h.kind} named {h.name}.",
        f"Once upon a time, in {place[0]}, there lived {a_an(adj)} {h.kind} named {h.name}.",
        f"There once was {a_an(adj)} {h.kind} called {h.name}.",
        f"{h.name} was {a_an(adj)} {h.kind} who lived in {place[0]}.",
    ]
    s = [rng.choice(forms)]
    if rng.random() < 0.6:
        s.append(f"{h.He} loved to {rng.choice(LOVES)}.")
    if not h.animal and rng.random() < 0.5:
        s.append(f"{h.He} lived with {h.his} {rng.choice(FAMILY)}.")
    if rng.random() < 0.4:
        s.append(f"{rng.choice(WEATHER)}.")
    return s


def find_object(rng, h, obj, col):
    s = [f"{rng.choice(TIMES)}, {h.name} found {a_an(col)} {obj} {rng.choice(FOUND_AT)}."]
    line = rng.choice([f"Wow, what a nice {obj}!", f"Look at this {obj}!", f"I love this {obj}.",
                       f"This {obj} is so pretty!", f"I will keep this {obj} safe."])
    s.append(say(rng, h.name, line, rng.choice(["said", "said", "shouted", "whispered"])))
    return s


def plot_stuck(rng, h, f, obj, col):
    where = rng.choice(HIGH)
    s = [f"{h.He} played with the {obj} all morning.",
         f"Then the wind blew, and the {obj} flew up to {where}.",
         f"{h.name} felt {rng.choice(FEEL_BAD)}."]
    s.append(say(rng, h.name, rng.choice([f"Oh no! My {obj} is stuck!", "How will I get it down?",
                                           f"I want my {obj} back."])))
    s.append(f"{h.He} jumped and jumped, but {h.he} could not reach it.")
    s.append(f"Just then, {a_an(rng.choice(FRIEND_ADJ))} {f.kind} named {f.name} came by.")
    s.append(say(rng, f.name, rng.choice([f"Why are you sad, {h.name}?", "What is wrong?", "Can I help you?"]),
                 "asked"))
    s.append(f"{h.name} told {f.name} about the {obj}.")
    s.append(say(rng, f.name, rng.choice(["I can help you.", "Let us try together.", "I have an idea!"])))
    how = rng.choice([f"{f.name} stood on a big box and reached up high.",
                      f"{f.name} climbed up carefully and pushed the {obj} down.",
                      f"{f.name} found a long stick and poked the {obj} until it fell.",
                      f"{h.name} climbed on {f.name}'s back and grabbed the {obj}."])
    s.append(how)
    s.append(f"The {obj} was safe again!")
    return s


def plot_lost(rng, h, f, obj, col):
    s = [f"{h.He} took the {obj} everywhere {h.he} went.",
         f"But one day, the {obj} was gone!",
         f"{h.name} looked {rng.choice(['under the bed', 'in the garden', 'behind the door', 'in the box'])}, "
         f"but the {obj} was not there."]
    s.append(say(rng, h.name, rng.choice([f"Where is my {obj}?", f"I lost my {obj}!", "Can anyone help me?"]),
                 rng.choice(["cried", "said"])))
    s.append(f"{h.He} felt very {rng.choice(FEEL_BAD)}.")
    s.append(f"Then {h.his} friend {f.name} the {f.kind} came to see {h.him}.")
    s.append(say(rng, f.name, rng.choice(["Do not worry. We will find it together.", "Let me help you look.",
                                           "I think I saw it somewhere!"])))
    place = rng.choice(["near the pond", "under a big leaf", "in the tall grass", "by the old tree",
                        "next to the swing", "in the sand"])
    s.append(f"They looked and looked. At last, {f.name} found the {obj} {place}.")
    s.append(say(rng, h.name, rng.choice([f"My {obj}! Thank you, {f.name}!", "You found it! You are the best!",
                                           "Thank you so much!"]), rng.choice(["shouted", "said"])))
    return s


def plot_share(rng, h, f, obj, col):
    s = [f"{h.He} played with the {obj} every day.",
         f"One day, {f.name} the {f.kind} saw the {obj}.",
         say(rng, f.name, rng.choice([f"Can I play with your {obj}?", f"May I try your {obj}, please?",
                                      f"Your {obj} is so {col}! Can I have a turn?"]), "asked"),
         say(rng, h.name, rng.choice([f"No, it is my {obj}!", "No! It is mine.", "I do not want to share."])),
         f"{f.name} felt {rng.choice(FEEL_BAD)} and walked away.",
         f"Now {h.name} played alone, but it was not fun anymore.",
         f"{h.He} thought about {f.name} and felt bad.",
         f"So {h.he} ran to {f.name} and said, \"I am sorry. Let us play together.\"",
         f"{f.name} smiled, and they took turns with the {obj}.",
         "Playing together was much more fun than playing alone."]
    return s


def plot_broken(rng, h, f, obj, col):
    s = [f"{h.He} played with the {obj} very fast.",
         f"Suddenly, the {obj} fell on the ground and broke!",
         say(rng, h.name, rng.choice([f"Oh no! My {obj}!", "What did I do?", "Now it is broken!"]), "cried"),
         f"{h.He} tried to fix it by {h.him}self, but it did not work."]
    s.append(f"{h.name} went to {f.name} the {f.kind}.")
    s.append(say(rng, f.name, rng.choice(["Let me see. I think we can fix it.", "Do not cry. We can fix it together.",
                                           "I know what to do."])))
    s.append(rng.choice([f"They used some glue and held the pieces together.",
                         f"They used tape and string to fix the {obj}.",
                         f"{f.name} worked slowly and carefully until the {obj} was whole."]))
    s.append(f"Soon the {obj} was as good as new!")
    return s


def plot_scared(rng, h, f, obj, col):
    noise = rng.choice(["heard a loud noise", "heard a strange sound", "saw a big shadow",
                        "heard a rustle in the bushes"])
    s = [f"{h.He} took the {obj} to {rng.choice(['the woods', 'the park', 'the garden', 'the hill'])}.",
         f"Suddenly, {h.he} {noise}.",
         f"{h.name} was {rng.choice(['scared', 'very scared', 'afraid'])}.",
         say(rng, h.name, rng.choice(["Who is there?", "What was that?", "Is someone there?"]), "whispered")]
    s.append(f"Out came {a_an(rng.choice(FRIEND_ADJ))} {f.kind} named {f.name}.")
    s.append(say(rng, f.name, rng.choice(["Do not be scared. I am your friend.", "Hello! I did not mean to scare you.",
                                           "I only wanted to say hello."])))
    if f.sound:
        s.append(f"{f.name} {f.sound} softly.")
    s.append(f"{h.name} was not scared anymore.")
    s.append(f"{h.He} showed {f.name} the {obj}, and they played together.")
    return s


PLOTS = [plot_stuck, plot_lost, plot_share, plot_broken, plot_scared]


def resolution(rng, h, f, lesson):
    s = [f"{h.name} felt {rng.choice(FEEL_GOOD)}."]
    if rng.random() < 0.5:
        s.append(say(rng, h.name, rng.choice([f"Thank you, {f.name}. You are a good friend.",
                                               "You are my best friend!", "Let us play again tomorrow."])))
    if rng.random() < 0.7:
        s.append(f"{h.name} learned that {lesson}.")
    end = rng.choice(ENDINGS).format(a=h.name, b=f.name, A=h.name, B=f.name)
    s.append(end)
    return s


def story(rng):
    place = rng.choice(PLACES)
    h = Hero(rng)
    f = Hero(rng, other_name=h.name)
    obj = rng.choice(OBJECTS)
    col = rng.choice(COLORS)
    s = opening(rng, h, place)
    s += find_object(rng, h, obj, col)
    s += rng.choice(PLOTS)(rng, h, f, obj, col)
    s += resolution(rng, h, f, rng.choice(LESSONS))
    return " ".join(s)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=".tmp/train/corpus")
    ap.add_argument("--stories", type=int, default=7000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    train, valid = [], []
    for i in range(args.stories):
        (valid if i % 20 == 19 else train).append(story(rng))
    for name, rows in (("train.txt", train), ("valid.txt", valid)):
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as fh:
            fh.write("\n".join(rows) + "\n")
    nbytes = sum(len(r) + 1 for r in train)
    print(f"{len(train)} train stories ({nbytes / 1e6:.2f} MB), {len(valid)} held-out stories -> {args.out}")


if __name__ == "__main__":
    main()
